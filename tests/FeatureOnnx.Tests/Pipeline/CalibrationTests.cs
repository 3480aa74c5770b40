using FeatureOnnx.Models;
using FeatureOnnx.Pipeline;
using FeatureOnnx.Preprocessing;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureOnnx.Tests.Pipeline;

/// <summary>
/// int8 calibration on images: the ranges ImageCalibrator measures equal the min/max and the percentiles (numpy's
/// inverted_cdf method, computed here by sorting) of the same activations, computed apart from it: the photos
/// preprocessed and run through the graph by a plain ONNX Runtime session.
/// </summary>
[Trait("Category", TestCategory.Fast)]
public sealed class CalibrationTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("minmax")]
    [InlineData("percentile:99.9")]
    [InlineData("percentile:99")]
    public void Ranges_equal_min_max_or_percentiles_of_the_same_activations(string method)
    {
        var manifest = new ModelCatalog().Resolve("resnet18");
        var options = new CalibrationOptions { Count = 6 }.WithMethod(method);
        var graph = TinyGraph(manifest.Input.Name);
        var calibrator = new ImageCalibrator(manifest, [Fixtures.PathOf("photos")], options);
        var result = calibrator.Collect(graph, ["c", "r"]);
        Assert.Equal(6, result.Record.Images);
        Assert.Equal(method, result.Record.Method);

        var values = Activations(manifest, graph, FeatureOnnx.Tests.Models.Uint8Agreement.Photos().Take(6).ToArray());
        for (var k = 0; k < 2; k++)
        {
            var sorted = values[k].Order().ToArray();
            var (min, max) = (sorted[0], sorted[^1]);
            var expected = options.Method == CalibrationMethod.MinMax
                ? new TensorRange(min, max)
                : new TensorRange((float)Percentile(sorted, 100 - options.Percentile), (float)Percentile(sorted, options.Percentile));
            var bin = (max - min) / ImageCalibrator.HistogramBins;
            output.WriteLine($"{method} {(k == 0 ? "conv" : "relu")}: calibrator [{result.Ranges[k].Min}, {result.Ranges[k].Max}], reference [{expected.Min}, {expected.Max}], bin {bin}");
            // the percentile pass counts a histogram of 8192 bins between min and max: exact to within one bin
            var tolerance = options.Method == CalibrationMethod.MinMax ? 0f : bin * 1.0001f;
            Assert.InRange(result.Ranges[k].Min, expected.Min - tolerance, expected.Min + tolerance);
            Assert.InRange(result.Ranges[k].Max, expected.Max - tolerance, expected.Max + tolerance);
        }
    }

    [Fact]
    public void The_set_hash_is_over_file_contents_in_order()
    {
        var manifest = new ModelCatalog().Resolve("resnet18");
        var a = new ImageCalibrator(manifest, [Fixtures.PathOf("photos")], new CalibrationOptions { Count = 3 });
        using var dir = new Fixtures.TempDir();
        foreach (var photo in FeatureOnnx.Tests.Models.Uint8Agreement.Photos().Take(3)) File.Copy(photo, Path.Combine(dir.Path, Path.GetFileName(photo)));
        var b = new ImageCalibrator(manifest, [dir.Path], new CalibrationOptions { Count = 3 });
        Assert.Equal(a.Sha256, b.Sha256); // the same files elsewhere: same set, same cached graph
        Assert.NotEqual(a.Sha256, new ImageCalibrator(manifest, [Fixtures.PathOf("photos")], new CalibrationOptions { Count = 4 }).Sha256);
        Assert.NotEqual(a.Key, new ImageCalibrator(manifest, [dir.Path], new CalibrationOptions { Count = 3, Method = CalibrationMethod.MinMax }).Key);
    }

    /// <summary>numpy.percentile(method='inverted_cdf'): the smallest value with at least p% of the values at or below it
    /// (no interpolation: in a sparse tail, neighbouring values lie many histogram bins apart).</summary>
    private static double Percentile(float[] sorted, double p) => sorted[Math.Max(0, (int)Math.Ceiling(p / 100 * sorted.Length) - 1)];

    private static List<float>[] Activations(ModelManifest manifest, byte[] graph, string[] photos)
    {
        var pre = new ImagePreprocessor(manifest);
        using var session = new InferenceSession(graph);
        var values = new[] { new List<float>(), new List<float>() };
        foreach (var photo in photos)
        {
            var slot = new float[pre.SlotLength];
            pre.Preprocess(File.ReadAllBytes(photo), slot);
            using var input = OrtValue.CreateTensorValueFromMemory(slot, [1, 3, manifest.Input.Height, manifest.Input.Width]);
            using var outputs = session.Run(new RunOptions(), [manifest.Input.Name], [input], ["c", "r"]);
            values[0].AddRange(outputs[0].GetTensorDataAsSpan<float>().ToArray());
            values[1].AddRange(outputs[1].GetTensorDataAsSpan<float>().ToArray());
        }
        return values;
    }

    /// <summary>INPUT -> Conv(3 -> 4, 8x8, stride 8) = c -> Relu = r, both outputs.</summary>
    private static byte[] TinyGraph(string input)
    {
        var g = new GraphProto { Name = "calibration" };
        g.Input.Add(Value(input));
        g.Output.Add(Value("c"));
        g.Output.Add(Value("r"));
        var w = new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Float };
        w.Dims.AddRange([4, 3, 8, 8]);
        w.FloatData.AddRange(Enumerable.Range(0, 4 * 3 * 64).Select(i => MathF.Sin(i * 0.7f) * 0.05f));
        g.Initializer.Add(w);
        var conv = new NodeProto { OpType = "Conv", Name = "conv" };
        conv.Input.AddRange([input, "w"]);
        conv.Output.Add("c");
        conv.Attribute.Add(new AttributeProto { Name = "strides", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 8, 8 } });
        g.Node.Add(conv);
        var relu = new NodeProto { OpType = "Relu", Name = "relu" };
        relu.Input.Add("c");
        relu.Output.Add("r");
        g.Node.Add(relu);
        var model = new ModelProto { IrVersion = 8, Graph = g };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return model.ToByteArray();
    }

    private static ValueInfoProto Value(string name) =>
        new() { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } } };
}
