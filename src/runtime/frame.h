// Frames: a Table laid out in shared memory for a Python worker, and back.
//
// The layout is specified in docs/worker-protocol.md ("Frames"); both sides must agree
// on it, and the handshake's protocol version changes when it changes. Fixed-width
// value buffers come first, back to back, each aligned to its type's width, so that a
// worker can view same-typed numeric columns as one 2-D numpy block without copying.
#ifndef PYFUNC_SRC_RUNTIME_FRAME_H_
#define PYFUNC_SRC_RUNTIME_FRAME_H_

#include <cstddef>
#include <cstdint>

#include "pyfunc/prediction.h"
#include "pyfunc/status.h"
#include "pyfunc/table.h"

namespace pyfunc::runtime {

inline constexpr uint32_t kFrameVersion = 3;

// Bytes EncodeFrame needs for `table`.
size_t FrameSize(const Table& table);

// Writes `table` as a frame at `dst` (FrameSize(table) bytes, 64-byte aligned). `shape`
// is a PredictionShape for results, an InputShape for inputs: the direction gives the
// code its meaning (5 is kJson in a result, kColumns in an input).
void EncodeFrame(const Table& table, uint32_t shape, uint8_t* dst);

// Reads the frame at `src` (at most `size` bytes), bounds-checking every offset and
// length, and copies it into a Prediction. InvalidArgument naming the problem when the
// frame is malformed.
Result<Prediction> DecodeFrame(const uint8_t* src, size_t size);

}  // namespace pyfunc::runtime

#endif  // PYFUNC_SRC_RUNTIME_FRAME_H_
