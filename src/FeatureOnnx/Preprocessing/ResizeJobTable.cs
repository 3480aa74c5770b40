using FeatureOnnx.Models;

namespace FeatureOnnx.Preprocessing;

/// <summary>One decoded image for the GPU resize: where its pixels are and what crop of which resize to take.</summary>
/// <param name="Offset">Byte offset of its interleaved RGB pixels in the source buffer.</param>
/// <param name="Pitch">Bytes per source row (at least 3 x <paramref name="Width"/>).</param>
/// <param name="Width">Source columns.</param>
/// <param name="Height">Source rows.</param>
/// <param name="OutWidth">Width after the resize.</param>
/// <param name="OutHeight">Height after the resize.</param>
/// <param name="Window">The crop, in the resized image.</param>
internal readonly record struct ResizeSource(long Offset, int Pitch, int Width, int Height, int OutWidth, int OutHeight, PilResize.Window Window)
{
    /// <summary>The manifest's Resize(shorter) + CenterCrop of a <paramref name="width"/> x <paramref name="height"/> image, as
    /// <see cref="ImagePreprocessor"/> computes them for a full-size decode.</summary>
    public static ResizeSource ForCrop(long offset, int pitch, int width, int height, PreprocessSpec spec, ModelInput input)
    {
        var (w, h) = spec.ResizeShorter is { } shorter ? CenterCrop.ResizedSize(width, height, shorter) : (width, height);
        return new ResizeSource(offset, pitch, width, height, w, h, CenterCrop.Window(w, h, input.Height, input.Width));
    }
}

/// <summary>
/// The tables Kernels/pil_resize.cu reads for a batch: one row of <see cref="JobFields"/> int64 per image (layout in
/// the kernel's header comment), the taps of both axes of every image (triples: first source index, count, index in
/// <see cref="Weights"/>) and the fixed-point weights, all from <see cref="PilResize.Plan"/>. Built on the host and
/// uploaded; the launch geometry comes from here too, so the GPU and the C twin in the tests run the same grid.
/// </summary>
internal sealed class ResizeJobTable
{
    /// <summary>int64 fields per image (JOB_FIELDS in the kernel).</summary>
    public const int JobFields = 14;

    /// <summary>Threads per block along x.</summary>
    public const int BlockWidth = 128;

    /// <summary>CUDA's limit on gridDim.y; the kernels stride over rows beyond it.</summary>
    public const int MaxGridY = 65535;

    private ResizeJobTable(long[] jobs, int[] taps, int[] weights, long tempBytes, int maxCols, int maxRows, int count)
    {
        Jobs = jobs;
        Taps = taps;
        Weights = weights;
        TempBytes = tempBytes;
        MaxCols = maxCols;
        MaxRows = maxRows;
        Count = count;
    }

    /// <summary>Per-image job rows.</summary>
    public long[] Jobs { get; }

    /// <summary>Tap triples of every axis of every image.</summary>
    public int[] Taps { get; }

    /// <summary>Fixed-point weights (22 fractional bits).</summary>
    public int[] Weights { get; }

    /// <summary>Bytes of the horizontal pass's rows, all images together.</summary>
    public long TempBytes { get; }

    /// <summary>Widest horizontal pass (columns) of the batch.</summary>
    public int MaxCols { get; }

    /// <summary>Tallest horizontal pass (rows) of the batch.</summary>
    public int MaxRows { get; }

    /// <summary>Images.</summary>
    public int Count { get; }

    /// <summary>Plans every image with <paramref name="filter"/>; image n's crop goes to slot <paramref name="slots"/>[n] (default n).</summary>
    public static ResizeJobTable Build(IReadOnlyList<ResizeSource> images, Interpolation filter, IReadOnlyList<int>? slots = null)
    {
        if (slots is not null && slots.Count != images.Count) throw new ArgumentException("one slot per image", nameof(slots));
        var jobs = new long[images.Count * JobFields];
        var taps = new List<int>();
        var weights = new List<int>();
        long temp = 0;
        int maxCols = 0, maxRows = 0;
        for (var n = 0; n < images.Count; n++)
        {
            var image = images[n];
            if (image.Pitch < image.Width * 3) throw new ArgumentException($"image {n}: pitch {image.Pitch} is less than 3 x width {image.Width}.", nameof(images));
            var plan = PilResize.Plan(image.Width, image.Height, new PilResize.SourceBox(0, 0, image.Width, image.Height),
                image.OutWidth, image.OutHeight, filter, image.Window);
            var job = jobs.AsSpan(n * JobFields, JobFields);
            job[0] = image.Offset;
            job[1] = image.Pitch;
            job[2] = temp;
            job[3] = plan.RowFirst;
            job[4] = plan.Rows;
            job[5] = plan.X0;
            job[6] = plan.Cols;
            job[7] = plan.Y0;
            job[8] = plan.Ys;
            job[9] = image.Window.Left;
            job[10] = image.Window.Top;
            job[11] = Append(plan.Horizontal, taps, weights);
            job[12] = Append(plan.Vertical, taps, weights);
            job[13] = slots?[n] ?? n;
            temp += (long)plan.Rows * plan.Cols * 3;
            maxCols = Math.Max(maxCols, plan.Cols);
            maxRows = Math.Max(maxRows, plan.Rows);
        }
        return new ResizeJobTable(jobs, [.. taps], [.. weights], temp, maxCols, maxRows, images.Count);
    }

    /// <summary>Grid of pil_resize_horizontal: (x blocks, y, images).</summary>
    public (int X, int Y, int Z) HorizontalGrid(int maxGridY = MaxGridY) =>
        (Math.Max(1, (MaxCols + BlockWidth - 1) / BlockWidth), Math.Clamp(MaxRows, 1, maxGridY), Count);

    /// <summary>Grid of pil_resize_vertical for crops of <paramref name="width"/> x <paramref name="height"/>.</summary>
    public (int X, int Y, int Z) VerticalGrid(int width, int height, int maxGridY = MaxGridY) =>
        ((width + BlockWidth - 1) / BlockWidth, Math.Clamp(height, 1, maxGridY), Count);

    private static long Append(PilResize.Coefficients axis, List<int> taps, List<int> weights)
    {
        var at = taps.Count;
        var weightBase = weights.Count;
        for (var i = 0; i < axis.Starts.Length; i++)
        {
            taps.Add(axis.Starts[i]);
            taps.Add(axis.Counts[i]);
            taps.Add(weightBase + axis.Offsets[i]);
        }
        weights.AddRange(axis.Weights);
        return at;
    }
}
