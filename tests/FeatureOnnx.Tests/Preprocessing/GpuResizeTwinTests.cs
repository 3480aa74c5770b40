using System.Diagnostics;
using System.Runtime.InteropServices;
using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;

namespace FeatureOnnx.Tests.Preprocessing;

/// <summary>
/// Kernels/pil_resize.cu (taken from the library's embedded resource, exactly what NVRTC compiles on a GPU machine)
/// built as C with gcc next to fixtures/resize-twin/twin.c, whose launchers run the CUDA grid as loops.
/// </summary>
public sealed class ResizeKernelTwin : IDisposable
{
    private readonly Fixtures.TempDir _dir = new();
    private readonly nint _library;

    public ResizeKernelTwin()
    {
        if (Fixtures.CCompiler is not { } compiler)
        {
            SkipReason = Fixtures.NoCompiler("the resize kernel's C twin");
            return;
        }
        using (var kernel = typeof(ResizeJobTable).Assembly.GetManifestResourceStream("pil_resize.cu")!)
        using (var copy = File.Create(Path.Combine(_dir.Path, "pil_resize.cu")))
            kernel.CopyTo(copy);
        File.Copy(Fixtures.PathOf("resize-twin", "twin.c"), Path.Combine(_dir.Path, "twin.c"));
        var library = Path.Combine(_dir.Path, "libresizetwin.so");
        Fixtures.Build(compiler, ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o", library, "twin.c"], "the kernel twin", workingDirectory: _dir.Path);
        LibraryPath = library;
        _library = NativeLibrary.Load(library);
        _horizontal = Marshal.GetDelegateForFunctionPointer<HorizontalLaunch>(NativeLibrary.GetExport(_library, "twin_horizontal"));
        _vertical = Marshal.GetDelegateForFunctionPointer<VerticalLaunch>(NativeLibrary.GetExport(_library, "twin_vertical"));
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void HorizontalLaunch(uint gx, uint gy, uint gz, uint bx, byte[] src, [In, Out] byte[] temp, long[] jobs, int[] taps, int[] weights);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void VerticalLaunch(uint gx, uint gy, uint gz, uint bx, byte[] temp, [In, Out] byte[] dst, long[] jobs, int[] taps, int[] weights, int width, int height);

    private readonly HorizontalLaunch? _horizontal;
    private readonly VerticalLaunch? _vertical;

    public string? SkipReason { get; }

    /// <summary>The built twin (also a "module" for the fake libcuda's cuModuleLoadData: its *_launch functions).</summary>
    public string LibraryPath { get; } = "";

    /// <summary>Runs both kernels over <paramref name="images"/> (pixels in <paramref name="source"/>) as the GPU host code launches them.</summary>
    internal byte[] Run(byte[] source, IReadOnlyList<ResizeSource> images, Interpolation filter, int width, int height,
        int maxGridY = ResizeJobTable.MaxGridY, IReadOnlyList<int>? slots = null)
    {
        var table = ResizeJobTable.Build(images, filter, slots);
        var temp = new byte[Math.Max(1, table.TempBytes)];
        var dst = new byte[images.Count * width * height * 3];
        dst.AsSpan().Fill(0xAB); // every byte of every slot must be written, padding included
        var taps = table.Taps.Length == 0 ? [0] : table.Taps;
        var weights = table.Weights.Length == 0 ? [0] : table.Weights;
        var (hx, hy, hz) = table.HorizontalGrid(maxGridY);
        var (vx, vy, vz) = table.VerticalGrid(width, height, maxGridY);
        _horizontal!((uint)hx, (uint)hy, (uint)hz, ResizeJobTable.BlockWidth, source, temp, table.Jobs, taps, weights);
        _vertical!((uint)vx, (uint)vy, (uint)vz, ResizeJobTable.BlockWidth, temp, dst, table.Jobs, taps, weights, width, height);
        return dst;
    }

    public void Dispose()
    {
        if (_library != 0) NativeLibrary.Free(_library);
        _dir.Dispose();
    }
}

[Trait("Category", TestCategory.Process)]
public sealed class GpuResizeTwinTests(ResizeKernelTwin twin) : IClassFixture<ResizeKernelTwin>
{
    public static TheoryData<Interpolation> Filters => new() { Interpolation.Bicubic, Interpolation.Bilinear };

    /// <summary>
    /// Every test photo, decoded by our decoder, in ONE batch whose rows are padded (as nvJPEG pitches them): each
    /// 224x224 crop of Resize(256) equals ImagePreprocessor.Crop of the same file, byte for byte.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Filters))]
    public void Every_test_photo_in_one_batch_equals_the_CPU_crop(Interpolation filter)
    {
        Skip.If(twin.SkipReason is not null, twin.SkipReason);
        var manifest = Fixtures.PreprocessOnly(PreprocessSpec.TorchvisionImageNet with { ResizeShorter = 256, Interpolation = filter });
        var preprocessor = new ImagePreprocessor(manifest);
        var files = Directory.GetFiles(Fixtures.PathOf("photos")).Where(f => !f.EndsWith(".md", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        Assert.True(files.Count >= 30);
        var decoded = files.Select(f => preprocessor.Decoder.Decode(File.ReadAllBytes(f))).ToList();
        var (source, images) = Pack(decoded, (i, w, h, offset, pitch) => ResizeSource.ForCrop(offset, pitch, w, h, manifest.Preprocess, manifest.Input));
        var crops = twin.Run(source, images, filter, 224, 224);
        for (var i = 0; i < files.Count; i++)
        {
            var expected = preprocessor.Crop(File.ReadAllBytes(files[i]));
            var actual = crops.AsSpan(i * expected.Length, expected.Length);
            Assert.True(actual.SequenceEqual(expected), $"{Path.GetFileName(files[i])} ({filter}): {Fixtures.AbsDiff(actual, expected)}");
        }
    }

    /// <summary>
    /// Odd sizes against PilResize.ResizeWindow directly: upscaling, a crop larger than the image (zero padding), an
    /// axis Pillow does not resample (identity taps), odd crop shapes, 1-pixel images, and a grid capped at a few
    /// rows so that the kernels' row stride is taken; every filter the tables express.
    /// </summary>
    [SkippableTheory]
    [InlineData(Interpolation.Bicubic)]
    [InlineData(Interpolation.Bilinear)]
    [InlineData(Interpolation.Lanczos)]
    [InlineData(Interpolation.Hamming)]
    [InlineData(Interpolation.Box)]
    [InlineData(Interpolation.Nearest)]
    public void Odd_sizes_equal_PilResize(Interpolation filter)
    {
        Skip.If(twin.SkipReason is not null, twin.SkipReason);
        var random = new Random(15);
        // (source w, h, resized w, h, window left, top); crops are 37 x 23.
        (int W, int H, int OutW, int OutH, int Left, int Top)[] cases =
        [
            (500, 375, 61, 45, 12, 11),   // shrink
            (13, 7, 97, 53, 30, 15),      // enlarge
            (20, 10, 20, 31, -8, 4),      // width not resampled, window past the left and right edges
            (30, 40, 17, 40, -10, -7),    // height not resampled, crop larger than the image: padding all round
            (1, 1, 37, 23, 0, 0),         // one pixel
            (1, 300, 5, 1500, -16, 700),  // one column, tall
            (64, 64, 64, 64, 100, 100),   // window entirely outside: all zeros
        ];
        const int width = 37, height = 23;
        var decoded = cases.Select(c =>
        {
            var pixels = new byte[c.W * c.H * 3];
            random.NextBytes(pixels);
            return new RgbImage(c.W, c.H, pixels);
        }).ToList();
        var (source, images) = Pack(decoded, (i, w, h, offset, pitch) =>
            new ResizeSource(offset, pitch, w, h, cases[i].OutW, cases[i].OutH, new PilResize.Window(cases[i].Left, cases[i].Top, width, height)));
        // Second pass: slots in reverse order, as when images routed to the CPU leave theirs to the host.
        foreach (var (maxGridY, reversed) in new[] { (ResizeJobTable.MaxGridY, false), (3, true) })
        {
            var slots = Enumerable.Range(0, cases.Length).Select(i => reversed ? cases.Length - 1 - i : i).ToList();
            var crops = twin.Run(source, images, filter, width, height, maxGridY, slots);
            for (var i = 0; i < cases.Length; i++)
            {
                var c = cases[i];
                var expected = new byte[width * height * 3];
                PilResize.ResizeWindow(decoded[i].Pixels, c.W, c.H, c.OutW, c.OutH, filter, new PilResize.Window(c.Left, c.Top, width, height), expected);
                var actual = crops.AsSpan(slots[i] * expected.Length, expected.Length);
                Assert.True(actual.SequenceEqual(expected), $"case {i} {c} ({filter}, grid y <= {maxGridY}, slot {slots[i]}): {Fixtures.AbsDiff(actual, expected)}");
            }
        }
    }

    /// <summary>Lays the images one after another with rows padded to a multiple of 256 bytes plus garbage, as a pitched device buffer.</summary>
    private static (byte[] Source, List<ResizeSource> Images) Pack(IReadOnlyList<RgbImage> decoded, Func<int, int, int, long, int, ResizeSource> describe)
    {
        var images = new List<ResizeSource>();
        long offset = 0;
        foreach (var (image, i) in decoded.Select((d, i) => (d, i)))
        {
            var pitch = (image.Width * 3 + 255) / 256 * 256 + 256;
            images.Add(describe(i, image.Width, image.Height, offset, pitch));
            offset += (long)pitch * image.Height;
        }
        var source = new byte[offset];
        new Random(7).NextBytes(source); // the padding holds garbage that must never be read
        for (var i = 0; i < decoded.Count; i++)
        {
            var image = decoded[i];
            for (var y = 0; y < image.Height; y++)
                image.Pixels.AsSpan(y * image.Width * 3, image.Width * 3).CopyTo(source.AsSpan((int)(images[i].Offset + (long)y * images[i].Pitch)));
        }
        return (source, images);
    }
}
