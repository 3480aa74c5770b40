using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace FeatureOnnx.Runtime.Int8Kernels;

/// <summary>
/// <see cref="QuantizedActivations"/> as ONNX Runtime custom operators, written in C# against ONNX Runtime's C API (the
/// managed package has no custom-operator API): domain <see cref="Domain"/>, operators
/// <c>QLinearSiLU(x, x_scale, x_zero_point, y_scale, y_zero_point)</c> and
/// <c>QLinearChannelScale(x, x_scale, x_zero_point, g, g_scale, g_zero_point, y_scale, y_zero_point)</c> (x channels
/// last, g one value per image and channel), each a uint8 output shaped as x. The kernels split their work over ONNX
/// Runtime's own intra-op threads (<c>KernelContext_ParallelFor</c>), so a session's thread count still holds.
/// <para>
/// The operator table and the domain are made once per process and never freed: ONNX Runtime keeps pointers to them in
/// every session that registered the domain, for as long as that session lives. Indices into the OrtApi function table
/// are ABI (append-only since 1.0); <c>ActivationOpsTests</c> checks them against the onnxruntime_c_api.h of the package
/// we build with.
/// </para>
/// </summary>
internal static unsafe class ActivationOps
{
    /// <summary>The operators' domain in a graph.</summary>
    public const string Domain = "ai.featureonnx";

    /// <summary>Operator names.</summary>
    public const string SiLU = "QLinearSiLU", ChannelScale = "QLinearChannelScale";

    /// <summary>OrtApi version asked for: 17 brought KernelContext_ParallelFor (ONNX Runtime 1.17).</summary>
    private const uint ApiVersion = 17;

    /// <summary>OrtCustomOp version we fill: 16 reads KernelComputeV2 (errors come back as statuses) and nothing newer.</summary>
    private const uint CustomOpVersion = 16;

    /// <summary>Positions in the OrtApi function table (onnxruntime_c_api.h, struct OrtApi).</summary>
    internal static class ApiIndex
    {
        public const int CreateStatus = 0;
        public const int GetErrorMessage = 2;
        public const int ReleaseStatus = 93;
        public const int CreateCustomOpDomain = 26;
        public const int CustomOpDomainAdd = 27;
        public const int AddCustomOpDomain = 28;
        public const int GetTensorMutableData = 51;
        public const int GetDimensionsCount = 61;
        public const int GetDimensions = 62;
        public const int GetTensorTypeAndShape = 65;
        public const int KernelContextGetInputCount = 88;
        public const int KernelContextGetInput = 90;
        public const int KernelContextGetOutput = 91;
        public const int ReleaseTensorTypeAndShapeInfo = 99;
        public const int KernelContextParallelFor = 274;
    }

    /// <summary>onnxruntime_c_api.h's OrtCustomOp, up to the fields of version 16 and the ones after (left null).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct OrtCustomOp
    {
        public uint Version;
        public nint CreateKernel, GetName, GetExecutionProviderType, GetInputType, GetInputTypeCount, GetOutputType, GetOutputTypeCount,
            KernelCompute, KernelDestroy, GetInputCharacteristic, GetOutputCharacteristic, GetInputMemoryType,
            GetVariadicInputMinArity, GetVariadicInputHomogeneity, GetVariadicOutputMinArity, GetVariadicOutputHomogeneity,
            CreateKernelV2, KernelComputeV2, InferOutputShapeFn, GetStartVersion, GetEndVersion,
            GetMayInplace, ReleaseMayInplace, GetAliasMap, ReleaseAliasMap;
    }

    [DllImport("onnxruntime", EntryPoint = "OrtGetApiBase")]
    private static extern nint OrtGetApiBase();

    private static nint* _api;
    private static nint _domain;
    private static readonly Lock Gate = new();

    /// <summary>Registers the operators' domain with <paramref name="options"/> (once per session options).</summary>
    /// <exception cref="InvalidOperationException">ONNX Runtime refused the domain; the message says why.</exception>
    public static void Register(SessionOptions options)
    {
        var domain = EnsureDomain();
        var add = (delegate* unmanaged<nint, nint, nint>)_api[ApiIndex.AddCustomOpDomain];
        Check(add(options.DangerousGetHandle(), domain));
    }

    private static nint EnsureDomain()
    {
        lock (Gate)
        {
            if (_domain != 0) return _domain;
            var apiBase = (nint*)OrtGetApiBase();
            var getApi = (delegate* unmanaged<uint, nint>)apiBase[0];
            var api = (nint*)getApi(ApiVersion);
            if (api == null) throw new InvalidOperationException($"ONNX Runtime does not serve OrtApi version {ApiVersion} (ONNX Runtime 1.17 or newer is needed).");
            _api = api;
            nint domain;
            var name = Marshal.StringToCoTaskMemUTF8(Domain); // kept: the domain holds on to its name
            Check(((delegate* unmanaged<nint, nint*, nint>)api[ApiIndex.CreateCustomOpDomain])(name, &domain));
            var addOp = (delegate* unmanaged<nint, nint, nint>)api[ApiIndex.CustomOpDomainAdd];
            Check(addOp(domain, NewOp(&SiluName, 5, &ComputeSilu)));
            Check(addOp(domain, NewOp(&ChannelScaleName, 8, &ComputeChannelScale)));
            _domain = domain;
            return domain;
        }
    }

    private static readonly byte* SiluNameBytes = Utf8(SiLU);
    private static readonly byte* ChannelScaleNameBytes = Utf8(ChannelScale);

    private static byte* Utf8(string s)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(s + "\0");
        var p = (byte*)NativeMemory.Alloc((nuint)bytes.Length);
        bytes.CopyTo(new Span<byte>(p, bytes.Length));
        return p;
    }

    private static nint NewOp(delegate* unmanaged<nint, byte*> name, int inputs, delegate* unmanaged<nint, nint, nint> compute)
    {
        var op = (OrtCustomOp*)NativeMemory.AllocZeroed((nuint)sizeof(OrtCustomOp));
        op->Version = CustomOpVersion;
        op->CreateKernel = (nint)(delegate* unmanaged<nint, nint, nint, nint>)&CreateKernel;
        op->GetName = (nint)name;
        op->GetExecutionProviderType = (nint)(delegate* unmanaged<nint, nint>)&CpuProvider;
        if (inputs == 5)
        {
            op->GetInputType = (nint)(delegate* unmanaged<nint, nuint, int>)&SiluInputType;
            op->GetInputTypeCount = (nint)(delegate* unmanaged<nint, nuint>)&FiveInputs;
        }
        else
        {
            op->GetInputType = (nint)(delegate* unmanaged<nint, nuint, int>)&ChannelScaleInputType;
            op->GetInputTypeCount = (nint)(delegate* unmanaged<nint, nuint>)&EightInputs;
        }
        op->GetOutputType = (nint)(delegate* unmanaged<nint, nuint, int>)&Uint8Type;
        op->GetOutputTypeCount = (nint)(delegate* unmanaged<nint, nuint>)&OneOutput;
        op->KernelCompute = (nint)(delegate* unmanaged<nint, nint, void>)&ComputeV1;
        op->KernelDestroy = (nint)(delegate* unmanaged<nint, void>)&DestroyKernel;
        op->GetInputCharacteristic = (nint)(delegate* unmanaged<nint, nuint, int>)&Required;
        op->GetOutputCharacteristic = (nint)(delegate* unmanaged<nint, nuint, int>)&Required;
        op->GetInputMemoryType = (nint)(delegate* unmanaged<nint, nuint, int>)&DefaultMemory;
        op->KernelComputeV2 = (nint)compute;
        return (nint)op;
    }

    private const int TypeFloat = 1, TypeUint8 = 2;

    [UnmanagedCallersOnly] private static byte* SiluName(nint op) => SiluNameBytes;
    [UnmanagedCallersOnly] private static byte* ChannelScaleName(nint op) => ChannelScaleNameBytes;
    [UnmanagedCallersOnly] private static nint CpuProvider(nint op) => 0; // null: the CPU provider
    [UnmanagedCallersOnly] private static nuint FiveInputs(nint op) => 5;
    [UnmanagedCallersOnly] private static nuint EightInputs(nint op) => 8;
    [UnmanagedCallersOnly] private static nuint OneOutput(nint op) => 1;
    [UnmanagedCallersOnly] private static int Uint8Type(nint op, nuint index) => TypeUint8;
    [UnmanagedCallersOnly] private static int Required(nint op, nuint index) => 0;
    [UnmanagedCallersOnly] private static int DefaultMemory(nint op, nuint index) => 0;

    // x, x_scale, x_zero_point, y_scale, y_zero_point
    [UnmanagedCallersOnly] private static int SiluInputType(nint op, nuint index) => index is 1 or 3 ? TypeFloat : TypeUint8;

    // x, x_scale, x_zero_point, g, g_scale, g_zero_point, y_scale, y_zero_point
    [UnmanagedCallersOnly] private static int ChannelScaleInputType(nint op, nuint index) => index is 1 or 4 or 6 ? TypeFloat : TypeUint8;

    // The kernels keep no state: any non-null pointer will do.
    [UnmanagedCallersOnly] private static nint CreateKernel(nint op, nint api, nint info) => 1;
    [UnmanagedCallersOnly] private static void DestroyKernel(nint kernel) { }

    // Never called: ONNX Runtime uses KernelComputeV2 at OrtCustomOp version 16.
    [UnmanagedCallersOnly] private static void ComputeV1(nint kernel, nint context) { }

    /// <summary>A SiLU's parallel work: <see cref="Length"/> bytes through the table, <see cref="Chunk"/> bytes a task.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct SiluWork
    {
        // First, as in ScaleWork: set by a task that failed (an exception must not leave an UnmanagedCallersOnly method: it would end the process).
        public int Failed;
        public byte* Source, Destination, Table;
        public long Length, Chunk;
    }

    /// <summary>A gate's parallel work: each image's <see cref="PixelsPerImage"/> pixels of <see cref="Channels"/> bytes, <see cref="PixelsPerTask"/> pixels a task.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct ScaleWork
    {
        public int Failed;
        public byte* Source, Destination;
        public float* Factors;
        public int Channels, PixelsPerImage, PixelsPerTask, TasksPerImage;
        public byte XZero, YZero;
    }

    [UnmanagedCallersOnly]
    private static nint ComputeSilu(nint kernel, nint context)
    {
        try
        {
            var x = Input(context, 0, out var dims);
            float xScale = Scalar<float>(context, 1), yScale = Scalar<float>(context, 3);
            byte xZero = Scalar<byte>(context, 2), yZero = Scalar<byte>(context, 4);
            var y = Output(context, dims);
            var table = stackalloc byte[256];
            QuantizedActivations.SiluTable(xScale, xZero, yScale, yZero, new Span<byte>(table, 256));
            var length = Count(dims);
            // Slices of 64 KiB: enough to amortise a task, small enough to spread a 112x112x96 map over the threads.
            const long chunk = 1 << 16;
            var work = new SiluWork { Source = (byte*)Data(x), Destination = (byte*)Data(y), Table = table, Length = length, Chunk = chunk };
            ParallelFor(context, &SiluSlice, (length + chunk - 1) / chunk, &work, &work.Failed);
            return 0;
        }
        catch (Exception e)
        {
            return Status(e);
        }
    }

    [UnmanagedCallersOnly]
    private static void SiluSlice(void* data, nuint index)
    {
        var w = (SiluWork*)data;
        try
        {
            var start = (long)index * w->Chunk;
            var n = (int)Math.Min(w->Chunk, w->Length - start);
            QuantizedActivations.Lookup(new ReadOnlySpan<byte>(w->Source + start, n), new Span<byte>(w->Destination + start, n), new ReadOnlySpan<byte>(w->Table, 256));
        }
        catch (Exception)
        {
            Interlocked.Exchange(ref w->Failed, 1);
        }
    }

    [UnmanagedCallersOnly]
    private static nint ComputeChannelScale(nint kernel, nint context)
    {
        try
        {
            var x = Input(context, 0, out var dims);
            var g = Input(context, 3, out var gateDims);
            float xScale = Scalar<float>(context, 1), gScale = Scalar<float>(context, 4), yScale = Scalar<float>(context, 6);
            byte xZero = Scalar<byte>(context, 2), gZero = Scalar<byte>(context, 5), yZero = Scalar<byte>(context, 7);
            // x [N, ..., C] channels last, g [N, 1, ..., 1, C].
            if (dims.Length < 2 || gateDims.Length != dims.Length || gateDims[0] != dims[0] || gateDims[^1] != dims[^1] || gateDims[1..^1].Any(d => d != 1))
                throw new InvalidOperationException($"{ChannelScale}: x [{string.Join(",", dims)}] and gate [{string.Join(",", gateDims)}] are not [N,...,C] and [N,1,...,1,C]");
            var y = Output(context, dims);
            int images = (int)dims[0], channels = (int)dims[^1];
            var pixels = (int)(Count(dims) / images / channels);
            var factors = new float[images * channels];
            QuantizedActivations.GateFactors(new ReadOnlySpan<byte>((byte*)Data(g), factors.Length), xScale, gScale, gZero, yScale, factors);
            // Tasks of 16 KiB of pixels each, per image (each image has its own factors).
            var perTask = Math.Max(1, (1 << 14) / channels);
            fixed (float* f = factors)
            {
                var work = new ScaleWork
                {
                    Source = (byte*)Data(x), Destination = (byte*)Data(y), Factors = f, Channels = channels, PixelsPerImage = pixels,
                    PixelsPerTask = perTask, TasksPerImage = (pixels + perTask - 1) / perTask, XZero = xZero, YZero = yZero,
                };
                ParallelFor(context, &ChannelScaleSlice, (long)images * work.TasksPerImage, &work, &work.Failed);
            }
            return 0;
        }
        catch (Exception e)
        {
            return Status(e);
        }
    }

    [UnmanagedCallersOnly]
    private static void ChannelScaleSlice(void* data, nuint index)
    {
        var w = (ScaleWork*)data;
        try
        {
            var image = (long)index / w->TasksPerImage;
            var first = (long)index % w->TasksPerImage * w->PixelsPerTask;
            var pixels = (int)Math.Min(w->PixelsPerTask, w->PixelsPerImage - first);
            var offset = (image * w->PixelsPerImage + first) * w->Channels;
            var bytes = pixels * w->Channels;
            QuantizedActivations.ScaleChannels(new ReadOnlySpan<byte>(w->Source + offset, bytes), new Span<byte>(w->Destination + offset, bytes), pixels, w->Channels,
                new ReadOnlySpan<float>(w->Factors + image * w->Channels, w->Channels), w->XZero, w->YZero);
        }
        catch (Exception)
        {
            Interlocked.Exchange(ref w->Failed, 1);
        }
    }

    /// <summary>Runs <paramref name="body"/> for tasks 0 .. <paramref name="tasks"/> - 1 on ONNX Runtime's intra-op threads; a task that set <paramref name="failed"/> fails the call.</summary>
    private static void ParallelFor(nint context, delegate* unmanaged<void*, nuint, void> body, long tasks, void* work, int* failed)
    {
        if (tasks <= 0) return;
        var parallelFor = (delegate* unmanaged<nint, delegate* unmanaged<void*, nuint, void>, nuint, nuint, void*, nint>)_api[ApiIndex.KernelContextParallelFor];
        Check(parallelFor(context, body, (nuint)tasks, 0, work));
        if (*failed != 0) throw new InvalidOperationException("a parallel task failed");
    }

    /// <summary>A scalar input (a scale or zero point): its one value, without reading its shape.</summary>
    private static T Scalar<T>(nint context, int index) where T : unmanaged
    {
        nint value;
        Check(((delegate* unmanaged<nint, nuint, nint*, nint>)_api[ApiIndex.KernelContextGetInput])(context, (nuint)index, &value));
        if (value == 0) throw new InvalidOperationException($"input {index} is missing");
        return *(T*)Data(value);
    }

    private static nint Input(nint context, int index, out long[] dims)
    {
        nint value;
        Check(((delegate* unmanaged<nint, nuint, nint*, nint>)_api[ApiIndex.KernelContextGetInput])(context, (nuint)index, &value));
        if (value == 0) throw new InvalidOperationException($"input {index} is missing");
        dims = Dimensions(value);
        return value;
    }

    private static nint Output(nint context, long[] dims)
    {
        nint value;
        fixed (long* d = dims)
            Check(((delegate* unmanaged<nint, nuint, long*, nuint, nint*, nint>)_api[ApiIndex.KernelContextGetOutput])(context, 0, d, (nuint)dims.Length, &value));
        return value;
    }

    private static long[] Dimensions(nint value)
    {
        nint info;
        Check(((delegate* unmanaged<nint, nint*, nint>)_api[ApiIndex.GetTensorTypeAndShape])(value, &info));
        try
        {
            nuint count;
            Check(((delegate* unmanaged<nint, nuint*, nint>)_api[ApiIndex.GetDimensionsCount])(info, &count));
            var dims = new long[(int)count];
            fixed (long* d = dims)
                Check(((delegate* unmanaged<nint, long*, nuint, nint>)_api[ApiIndex.GetDimensions])(info, d, count));
            return dims;
        }
        finally
        {
            ((delegate* unmanaged<nint, void>)_api[ApiIndex.ReleaseTensorTypeAndShapeInfo])(info);
        }
    }

    private static void* Data(nint value)
    {
        void* data;
        Check(((delegate* unmanaged<nint, void**, nint>)_api[ApiIndex.GetTensorMutableData])(value, &data));
        return data;
    }

    private static long Count(long[] dims) => dims.Aggregate(1L, (a, b) => a * b);

    /// <summary>A failed C API call: its status becomes the exception (the status is handed back to ONNX Runtime by <see cref="Status"/> or freed with the exception).</summary>
    private static void Check(nint status)
    {
        if (status == 0) return;
        var message = Marshal.PtrToStringUTF8(((delegate* unmanaged<nint, nint>)_api[ApiIndex.GetErrorMessage])(status)) ?? "unknown error";
        ((delegate* unmanaged<nint, void>)_api[ApiIndex.ReleaseStatus])(status);
        throw new InvalidOperationException($"ONNX Runtime: {message}");
    }

    private static nint Status(Exception e)
    {
        var message = Marshal.StringToCoTaskMemUTF8($"FeatureOnnx int8 kernel: {e.Message}");
        try
        {
            // ORT_FAIL = 1.
            return ((delegate* unmanaged<int, nint, nint>)_api[ApiIndex.CreateStatus])(1, message);
        }
        finally
        {
            Marshal.FreeCoTaskMem(message);
        }
    }
}
