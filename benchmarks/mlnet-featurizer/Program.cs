// Peer benchmark: ML.NET's DnnImageFeaturizer (ResNet18) used as ML.NET's own sample shows, timed end to end.
// Usage: mlnet-featurizer IMAGES_DIR OUT.npy [--threads N]
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Onnx;

namespace MlNetFeaturizer;

public static class Program
{
    private const int FeatureLength = 512;

    public static int Main(string[] args)
    {
        var clock = Stopwatch.StartNew();
        if (!TryParse(args, out var imagesDir, out var outPath, out var threads, out var usage))
        {
            Console.Error.WriteLine(usage);
            return 2;
        }
        if (!Directory.Exists(imagesDir))
        {
            Console.Error.WriteLine($"mlnet: images folder '{imagesDir}' does not exist; pass a folder of .jpg files.");
            return 2;
        }

        // Sorted by ordinal file name so that row i of OUT.npy is the i-th name in `ls | LC_ALL=C sort`.
        var files = Directory.EnumerateFiles(imagesDir, "*.jpg", SearchOption.TopDirectoryOnly)
            .Select(Path.GetFileName)
            .OrderBy(name => name, StringComparer.Ordinal)
            .Select(name => new ImageRow { ImagePath = name! })
            .ToList();
        if (files.Count == 0)
        {
            Console.Error.WriteLine($"mlnet: no .jpg files in '{imagesDir}'.");
            return 2;
        }

        var mlContext = new MLContext(seed: 0);
        if (threads is int n)
        {
            // ML.NET's (4.0.1+) public way to reach ORT's SessionOptions; DnnFeaturizeImage has no thread parameter of its own.
            mlContext.SetOnnxSessionOption(new OnnxSessionOptions { IntraOpNumThreads = n });
        }

        var data = mlContext.Data.LoadFromEnumerable(files);

        // The pipeline of ML.NET's DnnFeaturizeImage sample (docs/samples/.../ImageAnalytics/DnnFeaturizeImage.cs).
        var pipeline = mlContext.Transforms.LoadImages("ImageObject", imagesDir, nameof(ImageRow.ImagePath))
            .Append(mlContext.Transforms.ResizeImages("ImageObject", imageWidth: 224, imageHeight: 224))
            .Append(mlContext.Transforms.ExtractPixels("Pixels", "ImageObject"))
            .Append(mlContext.Transforms.DnnFeaturizeImage("FeaturizedImage",
                m => m.ModelSelector.ResNet18(mlContext, m.OutputColumn, m.InputColumn), "Pixels"));

        var transformed = pipeline.Fit(data).Transform(data);

        var features = new float[checked(files.Count * FeatureLength)];
        var rows = 0;
        var column = transformed.Schema["FeaturizedImage"];
        using (var cursor = transformed.GetRowCursor(new[] { column }))
        {
            var getter = cursor.GetGetter<VBuffer<float>>(column);
            var value = default(VBuffer<float>);
            while (cursor.MoveNext())
            {
                getter(ref value);
                if (value.Length != FeatureLength)
                {
                    Console.Error.WriteLine($"mlnet: row {rows} has {value.Length} features, expected {FeatureLength}.");
                    return 1;
                }
                value.DenseValues().ToArray().CopyTo(features, rows * FeatureLength);
                rows++;
            }
        }
        if (rows != files.Count)
        {
            Console.Error.WriteLine($"mlnet: {rows} rows came back for {files.Count} images.");
            return 1;
        }

        WriteNpy(outPath, features, rows, FeatureLength);
        clock.Stop();

        var seconds = clock.Elapsed.TotalSeconds;
        var threadText = threads is int t
            ? $"{t} (OnnxSessionOptions.IntraOpNumThreads)"
            : $"ORT default (IntraOpNumThreads=0: ORT picks; {Environment.ProcessorCount} logical CPUs)";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"mlnet: {rows} images in {seconds:F2} s ({rows / seconds:F2} img/s), threads {threadText}; " +
            $"onnxruntime {OrtEnv.Instance().GetVersionString()} from {LoadedLibrary("libonnxruntime.so")}, " +
            $"skia from {LoadedLibrary("libSkiaSharp.so")}"));
        return 0;
    }

    private static bool TryParse(string[] args, out string imagesDir, out string outPath, out int? threads, out string usage)
    {
        usage = "usage: mlnet-featurizer IMAGES_DIR OUT.npy [--threads N]";
        imagesDir = outPath = string.Empty;
        threads = null;
        var positional = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--threads")
            {
                if (i + 1 >= args.Length || !int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1)
                {
                    usage = "mlnet: --threads takes a whole number >= 1.\n" + usage;
                    return false;
                }
                threads = n;
                i++;
            }
            else
            {
                positional.Add(args[i]);
            }
        }
        if (positional.Count != 2)
        {
            return false;
        }
        imagesDir = Path.GetFullPath(positional[0]);
        outPath = positional[1];
        return true;
    }

    // The native library this process mapped, to show which ONNX Runtime / Skia build ML.NET actually ran.
    private static string LoadedLibrary(string fileName)
    {
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps))
        {
            return "(no /proc/self/maps)";
        }
        var paths = File.ReadLines(maps)
            .Select(line => line.IndexOf('/') is var at and >= 0 ? line[at..] : string.Empty)
            .Where(path => Path.GetFileName(path).StartsWith(fileName, StringComparison.Ordinal))
            .Distinct()
            .ToList();
        return paths.Count == 0 ? $"({fileName} not mapped)" : string.Join(", ", paths);
    }

    // NumPy .npy format 1.0: little-endian float32, C order, shape (rows, cols).
    private static void WriteNpy(string path, float[] values, int rows, int cols)
    {
        var dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}";
        var headerLength = 10 + dict.Length + 1;
        var padded = (headerLength + 63) / 64 * 64;
        var header = dict + new string(' ', padded - headerLength) + "\n";
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var writer = new BinaryWriter(stream);
        writer.Write(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0 });
        writer.Write(checked((ushort)header.Length));
        writer.Write(Encoding.ASCII.GetBytes(header));
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("mlnet: .npy writer assumes a little-endian machine.");
        }
        writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
    }

    private sealed class ImageRow
    {
        public string ImagePath { get; set; } = string.Empty;
    }
}
