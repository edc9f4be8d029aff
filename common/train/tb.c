/* train/tb.c - TensorBoard event files: protobuf encoding by hand, TFRecord framing, and
 * the file itself.
 *
 * Field numbers come from tensorboard/compat/proto (event.proto, summary.proto,
 * tensor.proto). Only the handful of fields mb writes are encoded; nothing is decoded.
 * Fields go out in field-number order and proto3 scalar defaults are omitted (step 0),
 * as the protobuf library does, so tests can compare bytes with it. simple_value sits
 * in a oneof and is therefore always written, 0.0 included: without it the reader would
 * see no value at all.
 */
#include "train/tb.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/crc32c.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"

enum wire { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

/* Event fields */
#define EVENT_WALL_TIME    1 /* double */
#define EVENT_STEP         2 /* int64 */
#define EVENT_FILE_VERSION 3 /* string, oneof what */
#define EVENT_SUMMARY      5 /* Summary, oneof what */
/* Summary, Summary.Value, SummaryMetadata(.PluginData), TensorProto fields */
#define SUMMARY_VALUE      1
#define VALUE_TAG          1
#define VALUE_SIMPLE       2 /* float, oneof value */
#define VALUE_TENSOR       8 /* TensorProto, oneof value */
#define VALUE_METADATA     9
#define META_PLUGIN_DATA   1
#define PLUGIN_NAME        1
#define TENSOR_DTYPE       1
#define TENSOR_SHAPE       2
#define TENSOR_STRING_VAL  8
#define DT_STRING          7 /* tensorflow DataType */

#define FILE_VERSION "brain.Event:2"

struct mb_tb {
    char *path;
    int fd;
    off_t size;           /* bytes of whole records written so far */
    struct mb_buf event;  /* scratch: one serialized Event */
    struct mb_buf record; /* scratch: the same Event framed */
};

/* ---- protobuf wire format -------------------------------------------------------- */

size_t mb_tb_varint(uint8_t out[10], uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static void put_varint(struct mb_buf *b, uint64_t v)
{
    uint8_t tmp[10];

    mb_buf_add(b, tmp, mb_tb_varint(tmp, v));
}

static void put_le(struct mb_buf *b, uint64_t v, int nbytes)
{
    for (int i = 0; i < nbytes; i++)
        mb_buf_addc(b, (char)(uint8_t)(v >> (8 * i)));
}

static void put_key(struct mb_buf *b, int field, enum wire w)
{
    put_varint(b, (uint64_t)field << 3 | w);
}

static void put_bytes(struct mb_buf *b, int field, const void *data, size_t len)
{
    put_key(b, field, WIRE_LEN);
    put_varint(b, len);
    mb_buf_add(b, data, len);
}

static void put_double(struct mb_buf *b, int field, double v)
{
    uint64_t bits;

    memcpy(&bits, &v, sizeof bits);
    put_key(b, field, WIRE_I64);
    put_le(b, bits, 8);
}

static void put_float(struct mb_buf *b, int field, float v)
{
    uint32_t bits;

    memcpy(&bits, &v, sizeof bits);
    put_key(b, field, WIRE_I32);
    put_le(b, bits, 4);
}

/* The Event fields every record starts with. Negative steps would be valid (ten-byte
 * varints) but mb_tb_scalar() refuses them. */
static void put_event_head(struct mb_buf *b, double wall_time, int64_t step)
{
    put_double(b, EVENT_WALL_TIME, wall_time);
    if (step != 0) {
        put_key(b, EVENT_STEP, WIRE_VARINT);
        put_varint(b, (uint64_t)step);
    }
}

/* Event.summary = Summary{value: [VALUE]} around an already serialized Value. */
static void put_summary_of(struct mb_buf *b, const struct mb_buf *value)
{
    struct mb_buf summary = MB_BUF_INIT;

    put_bytes(&summary, SUMMARY_VALUE, value->data, value->len);
    put_bytes(b, EVENT_SUMMARY, summary.data, summary.len);
    mb_buf_release(&summary);
}

void mb_tb_event_version(struct mb_buf *out, double wall_time)
{
    put_event_head(out, wall_time, 0);
    put_bytes(out, EVENT_FILE_VERSION, FILE_VERSION, strlen(FILE_VERSION));
}

void mb_tb_event_scalar(struct mb_buf *out, double wall_time, int64_t step, const char *tag,
                        float value)
{
    struct mb_buf v = MB_BUF_INIT;

    put_bytes(&v, VALUE_TAG, tag, strlen(tag));
    put_float(&v, VALUE_SIMPLE, value);
    put_event_head(out, wall_time, step);
    put_summary_of(out, &v);
    mb_buf_release(&v);
}

void mb_tb_event_text(struct mb_buf *out, double wall_time, int64_t step, const char *tag,
                      const char *text, size_t len)
{
    struct mb_buf v = MB_BUF_INIT, tensor = MB_BUF_INIT, meta = MB_BUF_INIT;
    struct mb_buf plugin = MB_BUF_INIT;

    /* a scalar string tensor: the shape message is present and empty */
    put_key(&tensor, TENSOR_DTYPE, WIRE_VARINT);
    put_varint(&tensor, DT_STRING);
    put_bytes(&tensor, TENSOR_SHAPE, NULL, 0);
    put_bytes(&tensor, TENSOR_STRING_VAL, text, len);
    put_bytes(&plugin, PLUGIN_NAME, "text", 4);
    put_bytes(&meta, META_PLUGIN_DATA, plugin.data, plugin.len);

    put_bytes(&v, VALUE_TAG, tag, strlen(tag));
    put_bytes(&v, VALUE_TENSOR, tensor.data, tensor.len);
    put_bytes(&v, VALUE_METADATA, meta.data, meta.len);
    put_event_head(out, wall_time, step);
    put_summary_of(out, &v);
    mb_buf_release(&v);
    mb_buf_release(&tensor);
    mb_buf_release(&meta);
    mb_buf_release(&plugin);
}

/* ---- TFRecord framing ------------------------------------------------------------ */

void mb_tb_frame(struct mb_buf *out, const void *data, size_t len)
{
    size_t at = out->len;

    put_le(out, len, 8);
    put_le(out, mb_crc32c_mask(mb_crc32c(0, out->data + at, 8)), 4);
    mb_buf_add(out, data, len);
    put_le(out, mb_crc32c_mask(mb_crc32c(0, data, len)), 4);
}

/* ---- the file -------------------------------------------------------------------- */

static double wall_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* DIR/events.out.tfevents.<seconds>.<host>.<pid>.<n>, the name TensorFlow and PyTorch's
 * SummaryWriter use; TensorBoard picks up any file whose name contains "tfevents". */
static char *event_file_name(const char *dir)
{
    static atomic_int counter;
    char host[256] = "localhost";
    struct mb_buf b = MB_BUF_INIT;

    if (gethostname(host, sizeof host) != 0)
        strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    mb_buf_addf(&b, "%s%sevents.out.tfevents.%010lld.%s.%ld.%d", dir,
                dir[strlen(dir) - 1] == '/' ? "" : "/", (long long)time(NULL), host,
                (long)getpid(), atomic_fetch_add(&counter, 1));
    return b.data;
}

/* Write RECORD whole, or cut the file back to its last whole record and fail. */
static int write_record(mb_tb *tb, const struct mb_buf *record)
{
    size_t done = 0;

    while (done < record->len) {
        ssize_t n = write(tb->fd, record->data + done, record->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            if (ftruncate(tb->fd, tb->size) == 0)
                lseek(tb->fd, tb->size, SEEK_SET);
            errno = saved;
            return mb_err_errno(tb->path, "cannot write");
        }
        done += (size_t)n;
    }
    tb->size += (off_t)record->len;
    return 0;
}

/* Frame tb->event and write it. */
static int flush_event(mb_tb *tb)
{
    mb_buf_reset(&tb->record);
    mb_tb_frame(&tb->record, tb->event.data, tb->event.len);
    mb_buf_reset(&tb->event);
    return write_record(tb, &tb->record);
}

int mb_tb_open(mb_tb **out, const char *dir)
{
    *out = NULL;
    if (!dir || !*dir)
        return mb_err_set(MB_E_INVALID, "logger.tensorboard_dir", "empty directory name");
    if (mb_fs_mkdirs(dir, "directory") != 0)
        return -1;

    mb_tb *tb = mb_xcalloc(1, sizeof *tb);
    tb->path = event_file_name(dir);
    tb->fd = open(tb->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (tb->fd < 0) {
        mb_err_errno(tb->path, "cannot create");
        mb_tb_close(tb);
        return -1;
    }
    mb_tb_event_version(&tb->event, wall_clock());
    if (flush_event(tb) != 0) {
        mb_tb_close(tb);
        return -1;
    }
    *out = tb;
    return 0;
}

static int check_args(mb_tb *tb, const char *tag, int64_t step)
{
    if (!tag || !*tag)
        return mb_err_set(MB_E_INVALID, tb->path, "empty tag");
    if (step < 0)
        return mb_err_set(MB_E_INVALID, tb->path, "tag '%s': negative step %lld", tag,
                          (long long)step);
    return 0;
}

int mb_tb_scalar(mb_tb *tb, const char *tag, int64_t step, double value)
{
    if (check_args(tb, tag, step) != 0)
        return -1;
    mb_tb_event_scalar(&tb->event, wall_clock(), step, tag, (float)value);
    return flush_event(tb);
}

int mb_tb_text(mb_tb *tb, const char *tag, int64_t step, const char *text, size_t len)
{
    if (check_args(tb, tag, step) != 0)
        return -1;
    mb_tb_event_text(&tb->event, wall_clock(), step, tag, text, len);
    return flush_event(tb);
}

const char *mb_tb_path(const mb_tb *tb)
{
    return tb->path;
}

void mb_tb_close(mb_tb *tb)
{
    if (!tb)
        return;
    if (tb->fd >= 0)
        close(tb->fd);
    mb_buf_release(&tb->event);
    mb_buf_release(&tb->record);
    free(tb->path);
    free(tb);
}
