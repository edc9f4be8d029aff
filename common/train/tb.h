/* train/tb.h - TensorBoard event files: scalars and text, written without a protobuf library.
 *
 * An event file is a sequence of TFRecords, each holding one serialized tensorboard.Event:
 *
 *   uint64 len | uint32 masked_crc32c(len) | byte data[len] | uint32 masked_crc32c(data)
 *
 * all little-endian (core/crc32c.h has the mask). The first record is
 * Event{wall_time, file_version: "brain.Event:2"}; each later one carries a Summary with
 * one Value. The messages are encoded by hand, fields in field-number order and proto3
 * defaults omitted, which is byte for byte what the protobuf library writes.
 *
 * An event file is an append-only log, not an atomic output (style B.7): each record
 * goes to the kernel in one write() as soon as it is made, so a crashed run leaves a
 * readable prefix and TensorBoard can follow a live run. A record that fails part-way
 * is cut off again, so later records still follow a valid prefix.
 *
 * Only rank 0 writes; the caller ensures that. One mb_tb must not be used by two
 * threads at once; separate ones may.
 */
#ifndef MB_TRAIN_TB_H
#define MB_TRAIN_TB_H

#include <stddef.h>
#include <stdint.h>

#include "core/defs.h"
#include "core/str.h"

typedef struct mb_tb mb_tb;

/* Create DIR (and its parents) if missing and start a new event file in it named
 * events.out.tfevents.<unix seconds, 10 digits>.<hostname>.<pid>.<counter>, where the
 * counter tells apart files opened by one process in the same second. Writes the
 * file_version record. Returns 0 with *OUT set (free it with mb_tb_close()), or -1
 * with mb_err set naming the directory or file and *OUT NULL. */
MB_MUST_CHECK int mb_tb_open(mb_tb **out, const char *dir);

/* Append a scalar event: TAG (non-empty, any bytes up to the NUL) at STEP (>= 0) with
 * VALUE stored as float32, as TensorBoard's simple_value is. Returns 0, or -1 with
 * mb_err set naming the file. */
MB_MUST_CHECK int mb_tb_scalar(mb_tb *tb, const char *tag, int64_t step, double value);

/* Append a text event (TensorBoard's "text" plugin, rendered as Markdown): TAG at STEP
 * holding TEXT[LEN] as a scalar string tensor, e.g. the resolved config. Returns 0, or
 * -1 with mb_err set naming the file. */
MB_MUST_CHECK int mb_tb_text(mb_tb *tb, const char *tag, int64_t step, const char *text,
                             size_t len);

/* The path of TB's event file; owned by TB. */
const char *mb_tb_path(const mb_tb *tb);

/* Close the file and free TB. Every record is already with the kernel, so nothing can
 * be lost here. Accepts NULL. */
void mb_tb_close(mb_tb *tb);

/* ---- encoders, public so that tests can check them byte for byte ------------------ */

/* Write V as a protobuf base-128 varint into OUT (at most 10 bytes); returns the count. */
size_t mb_tb_varint(uint8_t out[10], uint64_t v);

/* Append a serialized Event{wall_time, file_version: "brain.Event:2"} to OUT. */
void mb_tb_event_version(struct mb_buf *out, double wall_time);

/* Append a serialized Event{wall_time, step, summary{value{tag, simple_value}}} to OUT. */
void mb_tb_event_scalar(struct mb_buf *out, double wall_time, int64_t step, const char *tag,
                        float value);

/* Append a serialized text Event to OUT: Value{tag, tensor{dtype: DT_STRING,
 * tensor_shape{}, string_val: [TEXT]}, metadata{plugin_data{plugin_name: "text"}}}. */
void mb_tb_event_text(struct mb_buf *out, double wall_time, int64_t step, const char *tag,
                      const char *text, size_t len);

/* Append DATA[LEN] to OUT as one TFRecord (length, masked CRCs). */
void mb_tb_frame(struct mb_buf *out, const void *data, size_t len);

#endif /* MB_TRAIN_TB_H */
