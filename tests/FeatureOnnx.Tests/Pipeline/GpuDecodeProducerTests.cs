using System.Runtime.InteropServices;
using System.Threading.Channels;
using FeatureOnnx.Cuda;
using FeatureOnnx.Models;
using FeatureOnnx.Pipeline;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Sources;
using FeatureOnnx.Tests.Cuda;
using FeatureOnnx.Tests.Preprocessing;

namespace FeatureOnnx.Tests.Pipeline;

/// <summary>
/// The GPU producer on the fakes (in-process libcuda running the kernels' C twin, fake nvJPEG): upright JPEGs go to
/// the "GPU", everything else (PNG, EXIF-rotated, CMYK, the JPEG nvJPEG fails on) to the CPU path in the same batch,
/// unreadable and truncated files to the failures with the CPU path's reasons, and every good input's crop sits in
/// its slot, in input order.
/// </summary>
[Trait("Category", TestCategory.Process)]
public sealed class GpuDecodeProducerTests(InProcessCudaStub cuda, NvJpegStubLibraries nvjpeg, ResizeKernelTwin twin)
    : IClassFixture<InProcessCudaStub>, IClassFixture<NvJpegStubLibraries>, IClassFixture<ResizeKernelTwin>
{
    [SkippableFact]
    public async Task Each_input_goes_where_it_can_be_decoded_and_its_crop_lands_in_its_slot()
    {
        var skip = cuda.SkipReason ?? nvjpeg.SkipReason ?? twin.SkipReason;
        Skip.If(skip is not null, skip);
        Fixtures.RequireTurboJpeg();
        var driver = CudaDriver.TryLoad(cuda.Library, out var reason) ?? throw new InvalidOperationException(reason);
        var library = NvJpegLibrary.TryLoad(out reason, name => name == NvJpegLibrary.EnvironmentVariable ? nvjpeg.WithHardware : null)
                      ?? throw new InvalidOperationException(reason);
        var manifest = Fixtures.PreprocessOnly(PreprocessSpec.TorchvisionImageNet with { ResizeShorter = 256 });
        var gpu = GpuPreprocessor.CreateWith(driver, 0, manifest, library, null, "", _ => System.Text.Encoding.UTF8.GetBytes(twin.LibraryPath + "\0"));
        using var producer = new GpuDecodeProducer(gpu, 4);

        using var tmp = new Fixtures.TempDir();
        string Copy(string name, byte[]? content = null, params string[] from)
        {
            var path = tmp.File(name);
            File.WriteAllBytes(path, content ?? File.ReadAllBytes(Fixtures.PathOf(from)));
            return path;
        }
        var baboon = File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_baboon.jpg"));
        var files = new (string Path, string Expect)[]
        {
            (Copy("a_baboon.jpg", baboon), "gpu"),
            (Copy("b_tiny.png", null, "generated", "tiny_99x61.png"), "cpu"),
            (Copy("c_china.jpg", null, "photos", "sklearn_china.jpg"), "gpu"),
            (Copy("d_exif6.jpg", null, "generated", "exif6.jpg"), "cpu"),
            (Copy("e_truncated.jpg", baboon[..(baboon.Length / 2)]), "failed"),
            (Copy("f_cmyk.jpg", null, "generated", "cmyk.jpg"), "cpu"),
            (Copy("g_nvjpeg_fails.jpg", NvJpegStubTests.WithComment(File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_apple.jpg")), "nvjpeg-stub-bad")), "cpu"),
            (tmp.File("h_missing.jpg"), "failed"),
            (Copy("i_fruits.jpg", null, "photos", "opencv_fruits.jpg"), "gpu"),
        };
        var items = files.Select(f => new InputItem(f.Path, f.Path)).ToList();
        var cpu = new ImagePreprocessor(manifest);
        var channel = Channel.CreateUnbounded<ExtractionPipeline.DecodedBatch>();
        using (var workers = new DecodeWorkers(2, 0))
            await producer.RunAsync(items, 4, workers, cpu, (item, _) => File.ReadAllBytes(item.Path), long.MaxValue, channel.Writer, CancellationToken.None);
        channel.Writer.Complete();
        var batches = new List<ExtractionPipeline.DecodedBatch>();
        await foreach (var b in channel.Reader.ReadAllAsync()) batches.Add(b);
        Assert.Equal(3, batches.Count); // at most 4 slot buffers in use: none of these was reused

        var failed = batches.SelectMany(b => b.Failed).ToDictionary(p => Path.GetFileName(p.Key), p => p.Reason);
        Assert.Equal(["e_truncated.jpg", "h_missing.jpg"], failed.Keys.Order());
        Assert.StartsWith("truncated JPEG", failed["e_truncated.jpg"]);
        Assert.Equal("file vanished before it could be read", failed["h_missing.jpg"]);

        var good = files.Where(f => f.Expect != "failed").ToList();
        Assert.Equal(good.Select(f => f.Path), batches.SelectMany(b => b.Items).Select(i => i.Path));
        var k = 0;
        foreach (var batch in batches)
        {
            var slots = new byte[batch.Items.Count * cpu.CropLength];
            Marshal.Copy(batch.DeviceSlots, slots, 0, slots.Length); // the fake's device memory is host memory
            for (var i = 0; i < batch.Items.Count; i++, k++)
            {
                var bytes = File.ReadAllBytes(good[k].Path);
                var expected = good[k].Expect == "cpu" ? cpu.Crop(bytes) : CropOfFakePixels(bytes, manifest);
                var actual = slots.AsSpan(i * cpu.CropLength, cpu.CropLength);
                Assert.True(actual.SequenceEqual(expected), $"{Path.GetFileName(good[k].Path)} ({good[k].Expect}): {Fixtures.AbsDiff(actual, expected)}");
            }
        }
        Assert.EndsWith("3 image(s) decoded on the GPU, 4 on the CPU", producer.Summary);
        Assert.True(producer.DecodeTicks > 0);
    }

    /// <summary>The crop of what the fake nvJPEG writes for this file (R = length &amp; 255, G = x, B = y), by PilResize.</summary>
    private static byte[] CropOfFakePixels(byte[] jpeg, ModelManifest manifest)
    {
        var header = new ImageDecoder().Identify(jpeg);
        var pixels = new byte[header.Width * header.Height * 3];
        for (var y = 0; y < header.Height; y++)
            for (var x = 0; x < header.Width; x++)
            {
                var p = (y * header.Width + x) * 3;
                (pixels[p], pixels[p + 1], pixels[p + 2]) = ((byte)(jpeg.Length & 255), (byte)(x & 255), (byte)(y & 255));
            }
        var source = ResizeSource.ForCrop(0, header.Width * 3, header.Width, header.Height, manifest.Preprocess, manifest.Input);
        var crop = new byte[manifest.Input.Height * manifest.Input.Width * 3];
        PilResize.ResizeWindow(pixels, header.Width, header.Height, source.OutWidth, source.OutHeight, manifest.Preprocess.Interpolation, source.Window, crop);
        return crop;
    }
}
