# mk/detect.mk - toolchain and library probe. Sets *_CFLAGS, *_LIBS, HAVE_CUDA, NVCC.
# Library flags come from pkg-config; scripts/install-deps.sh installs the packages.

PKG_CONFIG ?= pkg-config

MPI_CFLAGS   := $(shell $(PKG_CONFIG) --cflags ompi-c 2>/dev/null)
MPI_LIBS     := $(shell $(PKG_CONFIG) --libs ompi-c 2>/dev/null)
PCRE2_CFLAGS := $(shell $(PKG_CONFIG) --cflags libpcre2-8 2>/dev/null)
PCRE2_LIBS   := $(shell $(PKG_CONFIG) --libs libpcre2-8 2>/dev/null)
UTF8_CFLAGS  := $(shell $(PKG_CONFIG) --cflags libutf8proc 2>/dev/null)
UTF8_LIBS    := $(shell $(PKG_CONFIG) --libs libutf8proc 2>/dev/null)
JSON_CFLAGS  := $(shell $(PKG_CONFIG) --cflags jansson 2>/dev/null)
JSON_LIBS    := $(shell $(PKG_CONFIG) --libs jansson 2>/dev/null)
ZLIB_LIBS    := $(shell $(PKG_CONFIG) --libs zlib 2>/dev/null)
HDF5_CFLAGS  := $(shell $(PKG_CONFIG) --cflags hdf5-openmpi 2>/dev/null)
HDF5_LIBS    := $(shell $(PKG_CONFIG) --libs hdf5-openmpi 2>/dev/null)
BLAS_CFLAGS  := $(shell $(PKG_CONFIG) --cflags openblas 2>/dev/null)
BLAS_LIBS    := $(shell $(PKG_CONFIG) --libs openblas 2>/dev/null)
YAML_CFLAGS  := $(shell $(PKG_CONFIG) --cflags yaml-0.1 2>/dev/null)
YAML_LIBS    := $(shell $(PKG_CONFIG) --libs yaml-0.1 2>/dev/null)
# oneDNN (libdnnl-dev) ships no .pc file: found when the compiler finds its header
DNNL_LIBS    := $(shell $(CC) -E -include oneapi/dnnl/dnnl.h -x c /dev/null >/dev/null 2>&1 && echo -ldnnl)

# Checked when something is compiled, not here: 'make check' must be able to run
# scripts/install-deps.sh on a machine that has none of these yet.
MISSING_DEPS := $(if $(MPI_LIBS),,ompi-c) $(if $(PCRE2_LIBS),,libpcre2-8) \
                $(if $(UTF8_LIBS),,libutf8proc) $(if $(JSON_LIBS),,jansson) $(if $(ZLIB_LIBS),,zlib) \
                $(if $(HDF5_LIBS),,hdf5-openmpi) $(if $(BLAS_LIBS),,openblas) $(if $(YAML_LIBS),,yaml-0.1) \
                $(if $(DNNL_LIBS),,dnnl)
MISSING_DEPS := $(strip $(MISSING_DEPS))

NVCC ?= $(shell command -v nvcc 2>/dev/null || (test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc))
ifneq ($(NVCC),)
HAVE_CUDA := 1
else
HAVE_CUDA := 0
endif
