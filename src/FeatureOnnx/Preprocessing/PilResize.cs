using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FeatureOnnx.Models;

namespace FeatureOnnx.Preprocessing;

/// <summary>
/// Pillow's <c>Image.resize</c> for 8-bit RGB, reimplemented so that our pixels equal PIL's: the same filter
/// kernels and supports, the same coefficient rounding to 22-bit fixed point, a horizontal pass rounded to 8 bits,
/// then a vertical pass (Pillow 9.x <c>libImaging/Resample.c</c>). Only the output pixels inside a window are
/// computed, which is how a resize followed by a crop costs no more than the crop; each output pixel depends only on
/// its own row and column coefficients, so the values are those of a full resize then crop.
/// </summary>
public static class PilResize
{
    private const int PrecisionBits = 32 - 8 - 2;

    /// <summary>A rectangle of the resized image (may extend past it: those pixels are zero, as torchvision's padding).</summary>
    /// <param name="Left">First column.</param>
    /// <param name="Top">First row.</param>
    /// <param name="Width">Columns.</param>
    /// <param name="Height">Rows.</param>
    public readonly record struct Window(int Left, int Top, int Width, int Height);

    /// <summary>The region of the source that is resized, in source pixels (PIL's <c>Image.resize(size, box=...)</c>);
    /// fractional edges are allowed.</summary>
    /// <param name="Left">Left edge.</param>
    /// <param name="Top">Top edge.</param>
    /// <param name="Right">Right edge.</param>
    /// <param name="Bottom">Bottom edge.</param>
    public readonly record struct SourceBox(double Left, double Top, double Right, double Bottom);

    /// <summary>
    /// Resizes <paramref name="src"/> (HWC RGB, <paramref name="srcWidth"/> x <paramref name="srcHeight"/>) to
    /// <paramref name="outWidth"/> x <paramref name="outHeight"/> with PIL's <paramref name="filter"/> and writes the
    /// pixels of <paramref name="window"/> into <paramref name="dst"/> (HWC RGB, window.Width x window.Height).
    /// </summary>
    public static void ResizeWindow(ReadOnlySpan<byte> src, int srcWidth, int srcHeight, int outWidth, int outHeight,
        Interpolation filter, Window window, Span<byte> dst) =>
        ResizeWindow(src, srcWidth, srcHeight, new SourceBox(0, 0, srcWidth, srcHeight), outWidth, outHeight, filter, window, dst);

    /// <summary>
    /// <see cref="ResizeWindow(ReadOnlySpan{byte}, int, int, int, int, Interpolation, Window, Span{byte})"/> of the
    /// region <paramref name="box"/> of the source, as Pillow's <c>Image.resize(size, filter, box)</c>: output pixel
    /// centres map to <c>box.Left + (x + 0.5) * (box.Right - box.Left) / outWidth</c>.
    /// </summary>
    public static void ResizeWindow(ReadOnlySpan<byte> src, int srcWidth, int srcHeight, SourceBox box, int outWidth, int outHeight,
        Interpolation filter, Window window, Span<byte> dst)
    {
        if (src.Length < srcWidth * srcHeight * 3) throw new ArgumentException("source buffer too small", nameof(src));
        if (dst.Length < window.Width * window.Height * 3) throw new ArgumentException("destination buffer too small", nameof(dst));
        dst[..(window.Width * window.Height * 3)].Clear();

        // Part of the window that lies inside the resized image.
        var x0 = Math.Max(window.Left, 0);
        var x1 = Math.Min(window.Left + window.Width, outWidth);
        var y0 = Math.Max(window.Top, 0);
        var y1 = Math.Min(window.Top + window.Height, outHeight);
        if (x0 >= x1 || y0 >= y1) return;

        if (filter == Interpolation.Nearest)
        {
            NearestWindow(src, srcWidth, srcHeight, box, outWidth, outHeight, window, x0, x1, y0, y1, dst);
            return;
        }

        // Pillow's ImagingResample: a pass is skipped only when its axis is neither resized nor boxed.
        var needHorizontal = outWidth != srcWidth || box.Left != 0 || box.Right != srcWidth;
        var needVertical = outHeight != srcHeight || box.Top != 0 || box.Bottom != srcHeight;

        // Vertical coefficients first: they say which source rows the horizontal pass must produce.
        Coefficients? vert = needVertical ? Coefficients.Compute(srcHeight, box.Top, box.Bottom, outHeight, filter, y0, y1) : null;
        int rowFirst, rowLast;
        if (vert is null) { rowFirst = y0; rowLast = y1; }
        else { rowFirst = vert.Min; rowLast = vert.Max; }

        // Horizontal pass: rows [rowFirst, rowLast) of the source, output columns [x0, x1).
        var cols = x1 - x0;
        var rows = rowLast - rowFirst;
        var tempLength = rows * cols * 3;
        var temp = ArrayPool<byte>.Shared.Rent(tempLength);
        try
        {
            if (needHorizontal)
            {
                var horiz = Coefficients.Compute(srcWidth, box.Left, box.Right, outWidth, filter, x0, x1);
                for (var r = 0; r < rows; r++)
                    HorizontalRow(src.Slice((rowFirst + r) * srcWidth * 3, srcWidth * 3), horiz, temp.AsSpan(r * cols * 3, cols * 3));
            }
            else
            {
                for (var r = 0; r < rows; r++)
                    src.Slice((rowFirst + r) * srcWidth * 3 + x0 * 3, cols * 3).CopyTo(temp.AsSpan(r * cols * 3));
            }

            // Vertical pass into the window.
            var dstStride = window.Width * 3;
            var dstX = (x0 - window.Left) * 3;
            var rowLength = cols * 3;
            var acc = ArrayPool<int>.Shared.Rent(rowLength);
            try
            {
                for (var y = y0; y < y1; y++)
                {
                    var outRow = dst.Slice((y - window.Top) * dstStride + dstX, rowLength);
                    if (vert is null)
                    {
                        temp.AsSpan((y - rowFirst) * rowLength, rowLength).CopyTo(outRow);
                        continue;
                    }
                    var (start, count, offset) = vert.For(y - y0);
                    VerticalRow(temp.AsSpan((start - rowFirst) * rowLength, count * rowLength), rowLength,
                        vert.Weights.AsSpan(offset, count), acc.AsSpan(0, rowLength), outRow);
                }
            }
            finally
            {
                ArrayPool<int>.Shared.Return(acc);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(temp);
        }
    }

    /// <summary>
    /// The fixed-point taps of <see cref="ResizeWindow(ReadOnlySpan{byte}, int, int, SourceBox, int, int, Interpolation, Window, Span{byte})"/>
    /// for one image, as tables: what the GPU resize kernel (Kernels/pil_resize.cu) runs, so that both resizes share
    /// one coefficient computation. A pass Pillow skips and NEAREST become one tap of weight 1.0 (exact: the sum is
    /// p * 2^22 + 2^21, which shifts back to p).
    /// </summary>
    internal static WindowPlan Plan(int srcWidth, int srcHeight, SourceBox box, int outWidth, int outHeight, Interpolation filter, Window window)
    {
        var x0 = Math.Max(window.Left, 0);
        var x1 = Math.Min(window.Left + window.Width, outWidth);
        var y0 = Math.Max(window.Top, 0);
        var y1 = Math.Min(window.Top + window.Height, outHeight);
        if (x0 >= x1 || y0 >= y1) return new WindowPlan(0, 0, 0, 0, 0, 0, Coefficients.Empty, Coefficients.Empty);
        Coefficients horiz, vert;
        if (filter == Interpolation.Nearest)
        {
            horiz = Coefficients.Nearest(srcWidth, box.Left, box.Right, outWidth, x0, x1);
            vert = Coefficients.Nearest(srcHeight, box.Top, box.Bottom, outHeight, y0, y1);
        }
        else
        {
            var needHorizontal = outWidth != srcWidth || box.Left != 0 || box.Right != srcWidth;
            var needVertical = outHeight != srcHeight || box.Top != 0 || box.Bottom != srcHeight;
            horiz = needHorizontal ? Coefficients.Compute(srcWidth, box.Left, box.Right, outWidth, filter, x0, x1) : Coefficients.Identity(x0, x1);
            vert = needVertical ? Coefficients.Compute(srcHeight, box.Top, box.Bottom, outHeight, filter, y0, y1) : Coefficients.Identity(y0, y1);
        }
        return new WindowPlan(x0, x1 - x0, y0, y1 - y0, vert.Min, vert.Max - vert.Min, horiz, vert);
    }

    /// <summary>What <see cref="Plan"/> returns: the part of the window inside the resized image, the source rows the
    /// horizontal pass reads, and each axis's taps (per output position: first source index, count, index in Weights).</summary>
    internal sealed record WindowPlan(int X0, int Cols, int Y0, int Ys, int RowFirst, int Rows, Coefficients Horizontal, Coefficients Vertical);

    // One output row of the horizontal pass: for each output column, the weighted sum of its source pixels.
    // With SSE4.1 the three channels of a tap are one 4-lane multiply-add (the fourth lane is ignored); integer sums
    // are exact, so the bytes equal the scalar loop's.
    private static unsafe void HorizontalRow(ReadOnlySpan<byte> srcRow, Coefficients horiz, Span<byte> outRow)
    {
        var cols = outRow.Length / 3;
        var c = 0;
        if (Sse41.IsSupported)
        {
            var round = Vector128.Create(1 << (PrecisionBits - 1));
            fixed (byte* s = srcRow)
            fixed (byte* o = outRow)
            fixed (int* weights = horiz.Weights)
            fixed (int* starts = horiz.Starts)
            fixed (int* counts = horiz.Counts)
            fixed (int* offsets = horiz.Offsets)
            {
                for (; c < cols; c++)
                {
                    var start = starts[c];
                    var count = counts[c];
                    // The 4-byte load of the last tap reads one byte past the pixel: stay inside the row.
                    if ((start + count) * 3 + 1 > srcRow.Length) break;
                    var sum = round;
                    var w = weights + offsets[c];
                    var p = s + start * 3;
                    for (var k = 0; k < count; k++, p += 3)
                        sum += Sse41.ConvertToVector128Int32(p) * Vector128.Create(w[k]);
                    // Shift, clamp to 0..255 and store the three bytes.
                    var v = Vector128.Min(Vector128.Max(Vector128.ShiftRightArithmetic(sum, PrecisionBits), Vector128<int>.Zero), Vector128.Create(255));
                    var d = o + c * 3;
                    d[0] = (byte)v.GetElement(0);
                    d[1] = (byte)v.GetElement(1);
                    d[2] = (byte)v.GetElement(2);
                }
            }
        }
        for (; c < cols; c++)
        {
            var (start, count, offset) = horiz.For(c);
            int s0 = 1 << (PrecisionBits - 1), s1 = s0, s2 = s0;
            for (var k = 0; k < count; k++)
            {
                var w = horiz.Weights[offset + k];
                var p = (start + k) * 3;
                s0 += srcRow[p] * w;
                s1 += srcRow[p + 1] * w;
                s2 += srcRow[p + 2] * w;
            }
            outRow[c * 3] = Clip8(s0);
            outRow[c * 3 + 1] = Clip8(s1);
            outRow[c * 3 + 2] = Clip8(s2);
        }
    }

    // One output row of the vertical pass: taps.Length rows of the horizontal result, each rowLength bytes, weighted
    // and summed column by column, Vector<byte>.Count columns at a time (widened to four Vector<int>), then the
    // scalar tail. Integer sums are exact, so the bytes equal the scalar loop's.
    private static void VerticalRow(ReadOnlySpan<byte> rows, int rowLength, ReadOnlySpan<int> taps, Span<int> acc, Span<byte> outRow)
    {
        acc.Fill(1 << (PrecisionBits - 1));
        var chunk = Vector<byte>.Count;
        var vectorEnd = Vector.IsHardwareAccelerated ? rowLength - rowLength % chunk : 0;
        var accVectors = MemoryMarshal.Cast<int, Vector<int>>(acc[..vectorEnd]);
        for (var k = 0; k < taps.Length; k++)
        {
            var row = rows.Slice(k * rowLength, rowLength);
            var w = taps[k];
            var weight = new Vector<int>(w);
            for (int b = 0, v = 0; b < vectorEnd; b += chunk, v += 4)
            {
                Vector.Widen(new Vector<byte>(row[b..]), out var low, out var high);
                Vector.Widen(low, out var i0, out var i1);
                Vector.Widen(high, out var i2, out var i3);
                accVectors[v] += Vector.AsVectorInt32(i0) * weight;
                accVectors[v + 1] += Vector.AsVectorInt32(i1) * weight;
                accVectors[v + 2] += Vector.AsVectorInt32(i2) * weight;
                accVectors[v + 3] += Vector.AsVectorInt32(i3) * weight;
            }
            for (var c = vectorEnd; c < rowLength; c++)
                acc[c] += row[c] * w;
        }
        var max = new Vector<int>(255);
        for (int b = 0, v = 0; b < vectorEnd; b += chunk, v += 4)
        {
            var q0 = Vector.AsVectorUInt32(Vector.Min(Vector.Max(Vector.ShiftRightArithmetic(accVectors[v], PrecisionBits), Vector<int>.Zero), max));
            var q1 = Vector.AsVectorUInt32(Vector.Min(Vector.Max(Vector.ShiftRightArithmetic(accVectors[v + 1], PrecisionBits), Vector<int>.Zero), max));
            var q2 = Vector.AsVectorUInt32(Vector.Min(Vector.Max(Vector.ShiftRightArithmetic(accVectors[v + 2], PrecisionBits), Vector<int>.Zero), max));
            var q3 = Vector.AsVectorUInt32(Vector.Min(Vector.Max(Vector.ShiftRightArithmetic(accVectors[v + 3], PrecisionBits), Vector<int>.Zero), max));
            Vector.Narrow(Vector.Narrow(q0, q1), Vector.Narrow(q2, q3)).CopyTo(outRow[b..]);
        }
        for (var i = vectorEnd; i < rowLength; i++)
            outRow[i] = Clip8(acc[i]);
    }

    private static byte Clip8(int value)
    {
        var v = value >> PrecisionBits;
        return v < 0 ? (byte)0 : v > 255 ? (byte)255 : (byte)v;
    }

    // PIL resizes with NEAREST through an affine transform: source index = (int)(box.Left + (dst + 0.5) * scale).
    private static void NearestWindow(ReadOnlySpan<byte> src, int srcWidth, int srcHeight, SourceBox box, int outWidth, int outHeight,
        Window window, int x0, int x1, int y0, int y1, Span<byte> dst)
    {
        var sx = (box.Right - box.Left) / outWidth;
        var sy = (box.Bottom - box.Top) / outHeight;
        for (var y = y0; y < y1; y++)
        {
            var srcY = Math.Clamp((int)(box.Top + (y + 0.5) * sy), 0, srcHeight - 1);
            for (var x = x0; x < x1; x++)
            {
                var srcX = Math.Clamp((int)(box.Left + (x + 0.5) * sx), 0, srcWidth - 1);
                var s = (srcY * srcWidth + srcX) * 3;
                var d = ((y - window.Top) * window.Width + (x - window.Left)) * 3;
                dst[d] = src[s];
                dst[d + 1] = src[s + 1];
                dst[d + 2] = src[s + 2];
            }
        }
    }

    /// <summary>Fixed-point filter weights for a range of output positions, as Pillow's precompute_coeffs + normalize_coeffs_8bpc.</summary>
    internal sealed class Coefficients
    {
        public static readonly Coefficients Empty = new() { Starts = [], Counts = [], Offsets = [], Weights = [] };

        /// <summary>One tap of weight 1.0 per position: the pass Pillow skips, as a table.</summary>
        public static Coefficients Identity(int first, int last)
        {
            var n = last - first;
            return new Coefficients
            {
                Starts = Enumerable.Range(first, n).ToArray(), Counts = Enumerable.Repeat(1, n).ToArray(),
                Offsets = Enumerable.Range(0, n).ToArray(), Weights = Enumerable.Repeat(1 << PrecisionBits, n).ToArray(),
                Min = first, Max = last,
            };
        }

        /// <summary>NEAREST as one tap of weight 1.0 on <see cref="NearestWindow"/>'s source index.</summary>
        public static Coefficients Nearest(int inSize, double in0, double in1, int outSize, int first, int last)
        {
            var n = last - first;
            var scale = (in1 - in0) / outSize;
            var starts = new int[n];
            for (var i = 0; i < n; i++) starts[i] = Math.Clamp((int)(in0 + (first + i + 0.5) * scale), 0, inSize - 1);
            return new Coefficients
            {
                Starts = starts, Counts = Enumerable.Repeat(1, n).ToArray(), Offsets = Enumerable.Range(0, n).ToArray(),
                Weights = Enumerable.Repeat(1 << PrecisionBits, n).ToArray(), Min = starts.Min(), Max = starts.Max() + 1,
            };
        }

        public required int[] Starts { get; init; }
        public required int[] Counts { get; init; }
        public required int[] Offsets { get; init; }
        public required int[] Weights { get; init; }
        public int Min { get; init; }
        public int Max { get; init; }

        public (int Start, int Count, int Offset) For(int i) => (Starts[i], Counts[i], Offsets[i]);

        public static Coefficients Compute(int inSize, double in0, double in1, int outSize, Interpolation filter, int outFirst, int outLast)
        {
            var (support0, kernel) = Kernel(filter);
            double scale = (in1 - in0) / outSize;
            double filterScale = Math.Max(scale, 1.0);
            double support = support0 * filterScale;
            var n = outLast - outFirst;
            var starts = new int[n];
            var counts = new int[n];
            var offsets = new int[n];
            var weights = new List<int>(n * ((int)Math.Ceiling(support) * 2 + 1));
            var pre = new double[(int)Math.Ceiling(support) * 2 + 2];
            int min = int.MaxValue, max = 0;
            for (var i = 0; i < n; i++)
            {
                var xx = outFirst + i;
                double center = in0 + (xx + 0.5) * scale;
                double ss = 1.0 / filterScale;
                var xmin = (int)(center - support + 0.5);
                if (xmin < 0) xmin = 0;
                var xmax = (int)(center + support + 0.5);
                if (xmax > inSize) xmax = inSize;
                xmax -= xmin;
                double ww = 0.0;
                for (var x = 0; x < xmax; x++)
                {
                    var w = kernel((x + xmin - center + 0.5) * ss);
                    pre[x] = w;
                    ww += w;
                }
                offsets[i] = weights.Count;
                for (var x = 0; x < xmax; x++)
                {
                    var w = ww != 0.0 ? pre[x] / ww : pre[x];
                    weights.Add(w < 0 ? (int)(-0.5 + w * (1 << PrecisionBits)) : (int)(0.5 + w * (1 << PrecisionBits)));
                }
                starts[i] = xmin;
                counts[i] = xmax;
                min = Math.Min(min, xmin);
                max = Math.Max(max, xmin + xmax);
            }
            return new Coefficients { Starts = starts, Counts = counts, Offsets = offsets, Weights = weights.ToArray(), Min = min, Max = max };
        }

        private static (double Support, Func<double, double> Kernel) Kernel(Interpolation filter) => filter switch
        {
            Interpolation.Box => (0.5, x => x > -0.5 && x <= 0.5 ? 1.0 : 0.0),
            Interpolation.Bilinear => (1.0, x => { x = Math.Abs(x); return x < 1.0 ? 1.0 - x : 0.0; }),
            Interpolation.Hamming => (1.0, x =>
            {
                x = Math.Abs(x);
                if (x == 0.0) return 1.0;
                if (x >= 1.0) return 0.0;
                x *= Math.PI;
                return Math.Sin(x) / x * (0.54 + 0.46 * Math.Cos(x));
            }),
            Interpolation.Bicubic => (2.0, x =>
            {
                const double a = -0.5;
                x = Math.Abs(x);
                if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
                if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
                return 0.0;
            }),
            Interpolation.Lanczos => (3.0, x => x >= -3.0 && x < 3.0 ? Sinc(x) * Sinc(x / 3) : 0.0),
            _ => throw new ArgumentOutOfRangeException(nameof(filter), filter, "no resampling kernel"),
        };

        private static double Sinc(double x)
        {
            if (x == 0.0) return 1.0;
            x *= Math.PI;
            return Math.Sin(x) / x;
        }
    }
}
