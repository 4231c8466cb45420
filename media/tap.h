#include <stdint.h>
#include <libavformat/avformat.h>

extern void sqTapBytes(uintptr_t handle, uint8_t *buf, int n);
AVIOContext *sq_tap_open(AVFormatContext *fc, const char *url, AVDictionary **opts, uintptr_t handle, int *err);
void sq_tap_close(AVIOContext *pb);
