using TurboJpeg = FeatureOnnx.Preprocessing.TurboJpegDecoder;
using FeatureOnnx.Models;
using FeatureOnnx.Formats;

namespace FeatureOnnx.Tests;

/// <summary>Test data shipped in tests/FeatureOnnx.Tests/fixtures (copied next to the test assembly).</summary>
internal static class Fixtures
{
    public static string Root => Path.Combine(AppContext.BaseDirectory, "fixtures");

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>
    /// libjpeg-turbo is part of every linux-x64 build (src/FeatureOnnx/native/linux-x64), so a test that needs it fails
    /// there when it is missing rather than skipping; other platforms, which carry no bundled copy, skip with the reason.
    /// </summary>
    public static void RequireTurboJpeg()
    {
        if (OperatingSystem.IsLinux() && System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64)
            Assert.True(TurboJpeg.IsAvailable, $"the bundled libjpeg-turbo did not load: {TurboJpeg.UnavailableReason}");
        Skip.IfNot(TurboJpeg.IsAvailable, $"TurboJPEG not available: {TurboJpeg.UnavailableReason}");
    }

    /// <summary>A uint8 .npy as (shape, bytes).</summary>
    public static (long[] Shape, byte[] Data) ReadUInt8Npy(string path)
    {
        using var stream = File.OpenRead(path);
        var info = NpyFormat.ReadHeader(stream, path);
        Assert.Equal("|u1", info.DType);
        var data = new byte[info.Count];
        stream.ReadExactly(data);
        return (info.Shape, data);
    }

    /// <summary>A float32 .npy as (shape, values).</summary>
    public static (long[] Shape, float[] Data) ReadFloatNpy(string path)
    {
        using var stream = File.OpenRead(path);
        var info = NpyFormat.ReadHeader(stream, path);
        Assert.Equal("<f4", info.DType);
        var data = new float[info.Count];
        stream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
        return (info.Shape, data);
    }

    /// <summary>A manifest for preprocessing tests; its source is never loaded.</summary>
    public static ModelManifest PreprocessOnly(PreprocessSpec spec, int cropHeight = 224, int cropWidth = 224) => new()
    {
        Name = "preprocess-test",
        Source = new ModelSource { File = "unused.onnx" },
        Input = new ModelInput { Name = "input", Shape = [3, cropHeight, cropWidth] },
        Preprocess = spec with { CenterCrop = [cropHeight, cropWidth] },
        Outputs = [new ModelOutput { Name = "out" }],
    };

    /// <summary>Mean and max absolute difference of two byte images of the same size.</summary>
    public static (double Mean, int Max) AbsDiff(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        Assert.Equal(a.Length, b.Length);
        long sum = 0;
        var max = 0;
        for (var i = 0; i < a.Length; i++)
        {
            var d = Math.Abs(a[i] - b[i]);
            sum += d;
            max = Math.Max(max, d);
        }
        return ((double)sum / a.Length, max);
    }

    public static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < a.Length; i++) { dot += (double)a[i] * b[i]; na += (double)a[i] * a[i]; nb += (double)b[i] * b[i]; }
        return dot / Math.Sqrt(na * nb);
    }

    /// <summary>The C compiler the native fakes are built with (/usr/bin/cc or /usr/bin/gcc), or null when there is none.</summary>
    public static string? CCompiler => new[] { "cc", "gcc" }.Select(c => System.IO.Path.Combine("/usr/bin", c)).FirstOrDefault(System.IO.File.Exists);

    /// <summary>The skip reason of a native fake that needs a C compiler to build <paramref name="what"/>.</summary>
    public static string NoCompiler(string what) => $"no C compiler at /usr/bin/cc or /usr/bin/gcc to build {what} (apt-get install gcc)";

    /// <summary>Runs one build step of a native fake; a failure throws with its stderr, naming <paramref name="what"/>.</summary>
    public static void Build(string program, IEnumerable<string> arguments, string what, string? workingDirectory = null, string? compiler = null)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (workingDirectory is not null) psi.WorkingDirectory = workingDirectory;
        if (compiler is not null) psi.Environment["CC"] = compiler;
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        using var build = System.Diagnostics.Process.Start(psi)!;
        var errors = build.StandardError.ReadToEndAsync();
        build.StandardOutput.ReadToEnd();
        build.WaitForExit();
        if (build.ExitCode != 0) throw new InvalidOperationException($"could not build {what}: {errors.Result}");
    }

    /// <summary>Temporary folder removed on dispose.</summary>
    public sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("featureonnx-test-").FullName;
        public string File(string name) => System.IO.Path.Combine(Path, name);
        public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
    }
}
