using System.Text;
using FeatureOnnx.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace FeatureOnnx.Tests.Runtime;

/// <summary>The worker protocol's start frame: the settings reach the worker whole, and a bad frame or model is one error reply.</summary>
[Trait("Category", TestCategory.Fast)]
public class EndToEndWorkerTests
{
    [Fact]
    public void A_model_that_cannot_load_is_one_error_reply_naming_it_after_the_start_frame_is_read()
    {
        var settings = new SessionSettings
        {
            Provider = ExecutionProviderKind.Cpu, IntraOpThreads = 3, AllowSpinning = false,
            OptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_BASIC, OptimizedModelCache = null,
        };
        var input = new MemoryStream();
        using (var w = new BinaryWriter(input, Encoding.UTF8, leaveOpen: true))
        {
            EndToEndWorker.WriteStart(w, "/nonexistent/model.e2e.onnx", settings);
            w.Write(-1); // quit
        }
        input.Position = 0;
        var output = new MemoryStream();

        Assert.Equal(1, EndToEndWorker.Serve(input, output));

        output.Position = 0;
        using var r = new BinaryReader(output);
        Assert.Equal((byte)'E', r.ReadByte());
        Assert.StartsWith("could not load /nonexistent/model.e2e.onnx", EndToEndWorker.ReadString(r));
    }

    [Fact]
    public void Every_setting_survives_the_start_frame()
    {
        var settings = new SessionSettings
        {
            Provider = ExecutionProviderKind.Cuda, DeviceId = 2, FallbackToCpu = true, Cuda = CudaProviderSettings.Parse("prefer_nhwc=1,cudnn_conv_algo_search=HEURISTIC"),
            IntraOpThreads = 5, AllowSpinning = true, OptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_EXTENDED, OptimizedModelCache = "/tmp/ort-cache",
            Int8ActivationKernels = false,
        };
        var frame = new MemoryStream();
        using (var w = new BinaryWriter(frame, Encoding.UTF8, leaveOpen: true)) EndToEndWorker.WriteStart(w, "m.onnx", settings);
        frame.Position = 0;
        using var r = new BinaryReader(frame);
        var (model, read) = EndToEndWorker.ReadStart(r);
        Assert.Equal("m.onnx", model);
        Assert.Equal(settings with { Cuda = read.Cuda }, read);
        Assert.Equal(settings.Cuda.ToString(), read.Cuda.ToString());
        Assert.Equal(frame.Length, frame.Position); // nothing left over for the first request to misread
    }

    [Fact]
    public void A_truncated_start_frame_is_refused_in_one_reply()
    {
        var input = new MemoryStream([4, 0, 0, 0, (byte)'m']);
        var output = new MemoryStream();
        Assert.Equal(1, EndToEndWorker.Serve(input, output));
        output.Position = 0;
        using var r = new BinaryReader(output);
        Assert.Equal((byte)'E', r.ReadByte());
        Assert.StartsWith("worker protocol: no valid start frame", EndToEndWorker.ReadString(r));
    }
}
