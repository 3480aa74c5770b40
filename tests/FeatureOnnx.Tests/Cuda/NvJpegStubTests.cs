using System.Diagnostics;
using System.Runtime.InteropServices;
using FeatureOnnx.Cuda;
using FeatureOnnx.Preprocessing;

namespace FeatureOnnx.Tests.Cuda;

/// <summary>
/// fixtures/nvjpeg-stub built once: a fake libnvjpeg.so.13 (host memory stands in for the device; "decoded" pixels
/// follow a pattern the tests check) and a copy whose hardware backend fails with NVJPEG_STATUS_ARCH_MISMATCH.
/// </summary>
public sealed class NvJpegStubLibraries : IDisposable
{
    private readonly Fixtures.TempDir _dir = new();

    public NvJpegStubLibraries()
    {
        if (Fixtures.CCompiler is not { } compiler)
        {
            SkipReason = Fixtures.NoCompiler("the fake nvJPEG");
            return;
        }
        Fixtures.Build("bash", [Fixtures.PathOf("nvjpeg-stub", "build.sh"), Folder], "the fake nvJPEG (nvjpeg-stub/build.sh)", compiler: compiler);
    }

    public string? SkipReason { get; }

    /// <summary>Holds libnvjpeg.so.13 (hardware backend available) and no-hardware/libnvjpeg.so.13.</summary>
    public string Folder => Path.Combine(_dir.Path, "lib");

    public string WithHardware => Path.Combine(Folder, "libnvjpeg.so.13");

    public string WithoutHardware => Path.Combine(Folder, "no-hardware", "libnvjpeg.so.13");

    public string TempPath => _dir.Path;

    public void Dispose() => _dir.Dispose();
}

/// <summary>Host memory handed to the fake nvJPEG as if it were device memory.</summary>
internal sealed class HostDecodeMemory : IDecodeMemory, IDisposable
{
    private nint _buffer;
    private long _capacity;

    public nint Reserve(long bytes)
    {
        if (bytes <= _capacity) return _buffer;
        Marshal.FreeHGlobal(_buffer);
        _buffer = Marshal.AllocHGlobal((nint)bytes);
        _capacity = bytes;
        return _buffer;
    }

    public byte[] Bytes(long offset, int length)
    {
        var copy = new byte[length];
        Marshal.Copy(_buffer + (nint)offset, copy, 0, length);
        return copy;
    }

    public void Dispose() => Marshal.FreeHGlobal(_buffer);
}

[Trait("Category", TestCategory.Process)]
public sealed class NvJpegStubTests(NvJpegStubLibraries stub) : IClassFixture<NvJpegStubLibraries>
{
    private static Func<string, string?> Only(params (string Name, string Value)[] variables) =>
        name => variables.FirstOrDefault(v => v.Name == name).Value;

    private NvJpegLibrary Load(string path)
    {
        Skip.If(stub.SkipReason is not null, stub.SkipReason);
        return NvJpegLibrary.TryLoad(out var reason, Only((NvJpegLibrary.EnvironmentVariable, path))) ?? throw new InvalidOperationException(reason);
    }

    [SkippableFact]
    public void A_missing_library_is_reported_with_the_variable_and_the_places_searched()
    {
        Skip.If(stub.SkipReason is not null, stub.SkipReason);
        var missing = Path.Combine(stub.TempPath, "nowhere", "libnvjpeg.so.13");
        Assert.Null(NvJpegLibrary.TryLoad(out var reason, Only((NvJpegLibrary.EnvironmentVariable, missing))));
        Assert.Contains($"{NvJpegLibrary.EnvironmentVariable}={missing} does not load", reason);

        // No override, nothing on the paths given: the reason lists where it looked and the fix (skipped where a real nvJPEG is installed).
        var found = NvJpegLibrary.TryLoad(out reason, Only(("LD_LIBRARY_PATH", Path.Combine(stub.TempPath, "empty"))));
        Skip.If(found is not null, $"a real nvJPEG is installed here ({found?.Library.Path}, {found?.Library.Origin})");
        Assert.Contains("libnvjpeg.so.13 not found beside the app, on LD_LIBRARY_PATH, under CUDA_HOME", reason);
        Assert.Contains("nvidia-*-cu13 wheels", reason);
    }

    [SkippableFact]
    public void The_search_finds_it_on_LD_LIBRARY_PATH_and_in_a_pip_wheel()
    {
        Skip.If(stub.SkipReason is not null, stub.SkipReason);
        var onPath = NvJpegLibrary.TryLoad(out var reason, Only(("LD_LIBRARY_PATH", "/nonexistent:" + stub.Folder)));
        Assert.True(onPath is not null, reason);
        Assert.Equal(("LD_LIBRARY_PATH", Path.Combine(stub.Folder, "libnvjpeg.so.13")), (onPath!.Library.Origin, onPath.Library.Path));

        // A virtual environment holding the nvidia-nvjpeg-cu13 wheel's layout.
        var venv = Path.Combine(stub.TempPath, "venv");
        var wheelLib = Path.Combine(venv, "lib", "python3.12", "site-packages", "nvidia", "cu13", "lib");
        Directory.CreateDirectory(wheelLib);
        File.Copy(stub.WithoutHardware, Path.Combine(wheelLib, "libnvjpeg.so.13"), overwrite: true);
        var wheel = NvJpegLibrary.TryLoad(out reason, Only(("VIRTUAL_ENV", venv)));
        Assert.True(wheel is not null, reason);
        Assert.Equal(("pip wheel", Path.Combine(wheelLib, "libnvjpeg.so.13")), (wheel!.Library.Origin, wheel.Library.Path));
    }

    [SkippableFact]
    public void Hardware_backend_is_used_where_the_GPU_has_JPEG_engines_and_its_version_and_engines_are_read()
    {
        var library = Load(stub.WithHardware);
        Assert.Equal(new Version(13, 0, 2), library.Version());
        using var handle = library.CreateHandle(NvJpegBackend.Hardware);
        Assert.Equal(NvJpegBackend.Hardware, handle.Backend);
        Assert.Null(handle.HardwareUnavailable);
        Assert.Equal((7, 1), handle.HardwareDecoderInfo());
    }

    [SkippableFact]
    public void ARCH_MISMATCH_on_the_hardware_backend_falls_back_to_the_default_backend()
    {
        var library = Load(stub.WithoutHardware);
        using var handle = library.CreateHandle(NvJpegBackend.Hardware);
        Assert.Equal(NvJpegBackend.Default, handle.Backend);
        Assert.Equal("nvjpegCreateEx(NVJPEG_BACKEND_HARDWARE) returned NVJPEG_STATUS_ARCH_MISMATCH", handle.HardwareUnavailable);
        Assert.Null(handle.HardwareDecoderInfo());
        using var decoder = new GpuJpegBatchDecoder(library);
        Assert.Equal(NvJpegBackend.Default, decoder.Backend);
    }

    /// <summary>
    /// A batch of four real JPEGs, one marked bad and one the hardware does not support: the batched call fails as a
    /// whole, each image is decoded alone, only the bad one goes to the CPU with nvJPEG's status, the unsupported one
    /// never reaches nvJPEG's decode, and the others' pixels sit at their offsets and pitches.
    /// </summary>
    [SkippableFact]
    public void A_decode_error_sends_only_that_image_to_the_CPU()
    {
        var library = Load(stub.WithHardware);
        var photos = new[] { "opencv_baboon.jpg", "libjxl_flower.png.im_q85_gray.jpg", "sklearn_china.jpg", "opencv_fruits.jpg" }
            .Select(f => File.ReadAllBytes(Fixtures.PathOf("photos", f))).ToArray();
        var jpegs = new ReadOnlyMemory<byte>[]
        {
            photos[0], WithComment(photos[1], "nvjpeg-stub-bad"), photos[2], WithComment(photos[3], "nvjpeg-stub-unsupported"),
        };
        using var decoder = new GpuJpegBatchDecoder(library);
        using var memory = new HostDecodeMemory();
        var decodedBefore = Decoded(library);
        var results = decoder.Decode(jpegs, memory, 0);

        Assert.Contains("NVJPEG_STATUS_BAD_JPEG", results[1].CpuReason);
        Assert.Contains("not supported by nvJPEG's hardware decoder", results[3].CpuReason);
        Assert.Equal(1, decoder.BatchesRetried);
        Assert.Equal(2, decoder.DecodedOnGpu);
        Assert.Equal(2, Decoded(library) - decodedBefore);
        var decoderIdentity = new ImageDecoder();
        foreach (var i in new[] { 0, 2 })
        {
            var r = results[i];
            Assert.True(r.OnGpu, r.CpuReason);
            var header = decoderIdentity.Identify(jpegs[i]);
            Assert.Equal((header.Width, header.Height), (r.Width, r.Height));
            Assert.Equal(0, r.Pitch % GpuJpegBatchDecoder.Alignment);
            Assert.Equal(0, r.Offset % GpuJpegBatchDecoder.Alignment);
            foreach (var (x, y) in new[] { (0, 0), (r.Width - 1, r.Height - 1), (r.Width / 2, r.Height / 3) })
                Assert.Equal(new[] { (byte)(jpegs[i].Length & 255), (byte)(x & 255), (byte)(y & 255) },
                    memory.Bytes(r.Offset + (long)y * r.Pitch + 3 * x, 3));
        }

        // The next batch, all good, is one batched call again.
        results = decoder.Decode([photos[0], photos[2]], memory, 0);
        Assert.All(results, r => Assert.True(r.OnGpu));
        Assert.Equal(1, decoder.BatchesRetried);
    }

    [SkippableFact]
    public void The_default_backend_decodes_what_the_hardware_one_would_refuse()
    {
        var library = Load(stub.WithoutHardware);
        using var decoder = new GpuJpegBatchDecoder(library);
        using var memory = new HostDecodeMemory();
        var jpeg = WithComment(File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_fruits.jpg")), "nvjpeg-stub-unsupported");
        var results = decoder.Decode([jpeg, (ReadOnlyMemory<byte>)new byte[] { 0xFF, 0xD8, 0xFF, 0xD9 }], memory, 0);
        Assert.True(results[0].OnGpu, results[0].CpuReason);
        Assert.Equal("nvjpegGetImageInfo returned NVJPEG_STATUS_BAD_JPEG", results[1].CpuReason);
    }

    private static long Decoded(NvJpegLibrary library) =>
        Marshal.GetDelegateForFunctionPointer<Counter>(NativeLibrary.GetExport(library.Library.Handle, "nvjpeg_stub_decoded"))();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate long Counter();

    /// <summary>The JPEG with a COM segment holding <paramref name="text"/> right after SOI.</summary>
    internal static byte[] WithComment(byte[] jpeg, string text)
    {
        var comment = System.Text.Encoding.ASCII.GetBytes(text);
        var segment = new byte[4 + comment.Length];
        segment[0] = 0xFF;
        segment[1] = 0xFE;
        segment[2] = (byte)((comment.Length + 2) >> 8);
        segment[3] = (byte)((comment.Length + 2) & 255);
        comment.CopyTo(segment, 4);
        return [.. jpeg[..2], .. segment, .. jpeg[2..]];
    }
}
