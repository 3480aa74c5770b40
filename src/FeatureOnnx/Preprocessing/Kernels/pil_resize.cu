/*
 * PilResize on the GPU: Pillow's two-pass fixed-point resample (libImaging/Resample.c, 8 bits per channel) for a
 * batch of RGB images, computing only the pixels of each image's crop window and writing uint8 HWC crops, one slot
 * per image, straight into the model's input buffer. The fixed-point taps come from C# (PilResize.Plan, the same code
 * that drives the CPU resize), so the arithmetic here is all there is to keep equal: int32 sums, a rounding term of
 * 1 << 21, an arithmetic shift by 22, a clamp to 0..255, horizontal pass first into 8-bit rows, then vertical.
 *
 * The same text compiles three ways: by NVRTC at run time (CUDA C++, __CUDACC_RTC__ defined), and as plain C by gcc
 * in the tests, where the harness defines KERNEL, dim3 and the blockIdx/threadIdx/blockDim/gridDim globals and loops
 * over the grid (tests/FeatureOnnx.Tests/fixtures/resize-twin). Keep to C99 that is also C++: no host calls.
 * Why NVRTC and not ILGPU: this way the code that runs on the GPU is plain CUDA C compiled by NVIDIA's own compiler
 * from the CUDA 13 install the CUDA provider already needs (libnvrtc.so.13 ships with the toolkit and the torch
 * wheels), and the very same text is what the CPU test checks bit for bit; ILGPU (1.5.3) would add a package and its
 * own IL-to-PTX compiler between our source and the GPU, and its CPU accelerator tests ILGPU's emulation, not the PTX
 * it emits for sm_90.
 *
 * Jobs: one row of JOB_FIELDS int64 per image (offsets in bytes, sizes in pixels):
 *   src       offset of the decoded image (interleaved RGB) in the source buffer
 *   pitch     bytes per source row
 *   temp      offset of this image's horizontal-pass rows (rows x cols x 3 bytes) in the temp buffer
 *   rowFirst  first source row the horizontal pass produces; rows: how many
 *   x0, cols  first output column inside the resized image and the window, and how many
 *   y0, ys    the same for output rows
 *   left, top the window's origin in the resized image (pixels of the window outside it are zero, as torchvision pads)
 *   htaps     index in taps of cols triples (first source column, count, index in weights)
 *   vtaps     index in taps of ys triples (first source row, count, index in weights)
 *   slot      the crop's slot in dst (images routed to the CPU leave theirs to be filled from the host)
 */
#ifndef KERNEL
#define KERNEL extern "C" __global__
#endif

#define JOB_SRC 0
#define JOB_PITCH 1
#define JOB_TEMP 2
#define JOB_ROW_FIRST 3
#define JOB_ROWS 4
#define JOB_X0 5
#define JOB_COLS 6
#define JOB_Y0 7
#define JOB_YS 8
#define JOB_LEFT 9
#define JOB_TOP 10
#define JOB_HTAPS 11
#define JOB_VTAPS 12
#define JOB_SLOT 13
#define JOB_FIELDS 14

#define PRECISION_BITS 22

#define CLIP8(v) ((v) >> PRECISION_BITS < 0 ? 0 : (v) >> PRECISION_BITS > 255 ? 255 : (v) >> PRECISION_BITS)

/* Grid: x covers the widest cols, y strides over temp rows, z is the image. */
KERNEL void pil_resize_horizontal(const unsigned char *src, unsigned char *temp, const long long *jobs,
                                  const int *taps, const int *weights)
{
    const long long *job = jobs + (long long)blockIdx.z * JOB_FIELDS;
    int c = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    int cols = (int)job[JOB_COLS];
    int rows = (int)job[JOB_ROWS];
    if (c >= cols) return;
    const int *tap = taps + job[JOB_HTAPS] + 3 * c;
    int start = tap[0], count = tap[1];
    const int *w = weights + tap[2];
    for (int r = (int)blockIdx.y; r < rows; r += (int)gridDim.y)
    {
        const unsigned char *p = src + job[JOB_SRC] + (job[JOB_ROW_FIRST] + r) * job[JOB_PITCH] + 3 * start;
        int s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
        for (int k = 0; k < count; k++, p += 3)
        {
            s0 += p[0] * w[k];
            s1 += p[1] * w[k];
            s2 += p[2] * w[k];
        }
        unsigned char *o = temp + job[JOB_TEMP] + ((long long)r * cols + c) * 3;
        o[0] = (unsigned char)CLIP8(s0);
        o[1] = (unsigned char)CLIP8(s1);
        o[2] = (unsigned char)CLIP8(s2);
    }
}

/* Grid: x covers the window's columns, y strides over its rows, z is the image; dst holds height x width x 3 slots. */
KERNEL void pil_resize_vertical(const unsigned char *temp, unsigned char *dst, const long long *jobs,
                                const int *taps, const int *weights, int width, int height)
{
    const long long *job = jobs + (long long)blockIdx.z * JOB_FIELDS;
    int wx = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (wx >= width) return;
    int c = (int)(job[JOB_LEFT] + wx - job[JOB_X0]);
    int cols = (int)job[JOB_COLS];
    for (int wy = (int)blockIdx.y; wy < height; wy += (int)gridDim.y)
    {
        unsigned char *o = dst + (job[JOB_SLOT] * height * width + (long long)wy * width + wx) * 3;
        int y = (int)(job[JOB_TOP] + wy - job[JOB_Y0]);
        if (c < 0 || c >= cols || y < 0 || y >= (int)job[JOB_YS])
        {
            o[0] = o[1] = o[2] = 0;
            continue;
        }
        const int *tap = taps + job[JOB_VTAPS] + 3 * y;
        int start = tap[0], count = tap[1];
        const int *w = weights + tap[2];
        const unsigned char *p = temp + job[JOB_TEMP] + ((long long)(start - job[JOB_ROW_FIRST]) * cols + c) * 3;
        int s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
        for (int k = 0; k < count; k++, p += (long long)cols * 3)
        {
            s0 += p[0] * w[k];
            s1 += p[1] * w[k];
            s2 += p[2] * w[k];
        }
        o[0] = (unsigned char)CLIP8(s0);
        o[1] = (unsigned char)CLIP8(s1);
        o[2] = (unsigned char)CLIP8(s2);
    }
}
