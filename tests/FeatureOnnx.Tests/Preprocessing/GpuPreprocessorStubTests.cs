using System.Diagnostics;
using System.Runtime.InteropServices;
using FeatureOnnx.Cuda;
using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Tests.Cuda;

namespace FeatureOnnx.Tests.Preprocessing;

/// <summary>
/// fixtures/cuda-stub's libcuda built for in-process use (one device by default, soname libcuda-inprocess.so.1 so
/// that no other test's dlopen of libcuda.so.1 finds it): host memory as device memory, and cuLaunchKernel running
/// the kernels' C twins (fixtures/resize-twin) loaded as the module.
/// </summary>
public sealed class InProcessCudaStub : IDisposable
{
    private readonly Fixtures.TempDir _dir = new();

    public InProcessCudaStub()
    {
        if (Fixtures.CCompiler is not { } compiler)
        {
            SkipReason = Fixtures.NoCompiler("the fake libcuda");
            return;
        }
        Library = Path.Combine(_dir.Path, "libcuda-inprocess.so.1");
        Fixtures.Build(compiler, ["-shared", "-fPIC", "-O1", "-w", "-DSTUB_CUDA", "-DSTUB_DEFAULT_DEVICES=1", "-Wl,-soname,libcuda-inprocess.so.1",
            "-o", Library, Fixtures.PathOf("cuda-stub", "cuda_stub.c"), "-ldl"], "the in-process libcuda");
    }

    public string? SkipReason { get; }

    public string Library { get; } = "";

    public void Dispose() => _dir.Dispose();
}

/// <summary>
/// GpuPreprocessor end to end on the fakes: nvJPEG's (fake) pixels at their pitched offsets, the jobs and taps
/// uploaded, both kernels launched through cuLaunchKernel with their arguments packed as CUDA wants them, each crop
/// in the slot it was given, a CPU crop uploaded into its slot, and a bad image handed back to the CPU.
/// </summary>
[Trait("Category", TestCategory.Process)]
public sealed class GpuPreprocessorStubTests(InProcessCudaStub cuda, NvJpegStubLibraries nvjpeg, ResizeKernelTwin twin)
    : IClassFixture<InProcessCudaStub>, IClassFixture<NvJpegStubLibraries>, IClassFixture<ResizeKernelTwin>
{
    [SkippableTheory]
    [InlineData(Interpolation.Bilinear)]
    [InlineData(Interpolation.Bicubic)]
    public void Crops_land_in_their_slots_equal_to_PilResize_of_the_decoded_pixels(Interpolation filter)
    {
        var skip = cuda.SkipReason ?? nvjpeg.SkipReason ?? twin.SkipReason;
        Skip.If(skip is not null, skip);
        var driver = CudaDriver.TryLoad(cuda.Library, out var reason) ?? throw new InvalidOperationException(reason);
        var library = NvJpegLibrary.TryLoad(out reason, name => name == NvJpegLibrary.EnvironmentVariable ? nvjpeg.WithHardware : null)
                      ?? throw new InvalidOperationException(reason);
        var manifest = Fixtures.PreprocessOnly(PreprocessSpec.TorchvisionImageNet with { ResizeShorter = 256, Interpolation = filter });
        using var gpu = GpuPreprocessor.CreateWith(driver, 0, manifest, library, null, "", _ => System.Text.Encoding.UTF8.GetBytes(twin.LibraryPath + "\0"));
        Assert.Contains("nvJPEG 13.0.2", gpu.Description);
        Assert.Contains("NVJPEG_BACKEND_HARDWARE", gpu.Description);

        byte[][] jpegs =
        [
            File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_baboon.jpg")),
            NvJpegStubTests.WithComment(File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_fruits.jpg")), "nvjpeg-stub-bad"),
            File.ReadAllBytes(Fixtures.PathOf("photos", "sklearn_china.jpg")),
            File.ReadAllBytes(Fixtures.PathOf("photos", "libjxl_flower.png.im_q85_gray.jpg")),
        ];
        var reasons = gpu.Decode(jpegs.Select(j => (ReadOnlyMemory<byte>)j).ToArray());
        Assert.Contains("NVJPEG_STATUS_BAD_JPEG", reasons[1]);
        Assert.Equal(3, reasons.Count(r => r is null));

        int[] slots = [2, -1, 0, 3];
        using var buffer = gpu.AllocateSlots(4);
        gpu.Crop(slots, buffer.Pointer);
        var cpuCrop = new byte[gpu.SlotBytes];
        new Random(1).NextBytes(cpuCrop);
        gpu.Upload(buffer.Pointer, 1, cpuCrop); // the bad image's replacement, decoded on the CPU
        gpu.Finish();
        var crops = new byte[4 * gpu.SlotBytes];
        Marshal.Copy(buffer.Pointer, crops, 0, crops.Length); // the fake's device memory is host memory

        Assert.Equal(cpuCrop, crops.AsSpan(gpu.SlotBytes, gpu.SlotBytes).ToArray());
        var decoder = new ImageDecoder();
        foreach (var i in new[] { 0, 2, 3 })
        {
            var header = decoder.Identify(jpegs[i]);
            var pixels = new byte[header.Width * header.Height * 3]; // what the fake nvJPEG writes
            for (var y = 0; y < header.Height; y++)
                for (var x = 0; x < header.Width; x++)
                {
                    var p = (y * header.Width + x) * 3;
                    (pixels[p], pixels[p + 1], pixels[p + 2]) = ((byte)(jpegs[i].Length & 255), (byte)(x & 255), (byte)(y & 255));
                }
            var source = ResizeSource.ForCrop(0, header.Width * 3, header.Width, header.Height, manifest.Preprocess, manifest.Input);
            var expected = new byte[gpu.SlotBytes];
            PilResize.ResizeWindow(pixels, header.Width, header.Height, source.OutWidth, source.OutHeight, filter, source.Window, expected);
            var actual = crops.AsSpan(slots[i] * gpu.SlotBytes, gpu.SlotBytes);
            Assert.True(actual.SequenceEqual(expected), $"image {i} in slot {slots[i]}: {Fixtures.AbsDiff(actual, expected)}");
        }
    }
}
