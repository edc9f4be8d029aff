/* core/cpus.h - how many CPUs this process may run on.
 *
 * The default for every thread count (OpenMP threads of the kernels, mb-preprocess
 * workers): the CPUs in the process's affinity mask, not the node's count, so that a
 * rank that Slurm, mpirun or taskset bound to some cores does not start more threads
 * than it has cores.
 */
#ifndef MB_CORE_CPUS_H
#define MB_CORE_CPUS_H

/* CPUs in this process's affinity mask (sched_getaffinity); the online CPUs if the
 * mask cannot be read. At least 1. */
int mb_cpus_usable(void);

#endif /* MB_CORE_CPUS_H */
