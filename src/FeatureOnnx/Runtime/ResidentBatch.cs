using FeatureOnnx.Cuda;
using Microsoft.ML.OnnxRuntime;
using OrtElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace FeatureOnnx.Runtime;

/// <summary>An output copied to host memory.</summary>
/// <param name="Shape">Dimensions, batch axis first.</param>
/// <param name="Values">Values, row-major.</param>
public sealed record HostTensor(long[] Shape, float[] Values);

/// <summary>
/// One batch held where the provider computes, for timing inference alone (as PyTorch benchmarks time a model whose
/// input is already on the GPU): the input is copied once into the provider's memory (device memory on CUDA, host
/// memory on the CPU) and bound there, and every output is bound to a buffer of its own there too, allocated once at
/// a fixed address (what <c>enable_cuda_graph</c> needs). <see cref="Run"/> moves no bytes between host and device;
/// <see cref="CopyOutputs"/> brings the last run's outputs to the host when they are wanted. Made by
/// <see cref="FeatureSession.CreateResident"/>, which it must not outlive; owns its buffers; one run at a time.
/// </summary>
public sealed class ResidentBatch : IDisposable
{
    private readonly InferenceSession _session;
    private readonly OrtIoBinding _binding;
    private readonly RunOptions _runOptions = new();
    private readonly CudaRuntime? _cuda;
    private readonly int _device;
    private readonly OrtMemoryInfo _memory;
    private readonly OrtAllocator _allocator;
    private readonly bool _ownsAllocator;
    private readonly List<OrtMemoryAllocation> _allocations = [];
    private readonly List<OrtValue> _values = [];
    private readonly List<(string Name, long[] Shape, OrtMemoryAllocation Buffer)> _outputs = [];

    internal ResidentBatch(InferenceSession session, ExecutionProviderKind provider, int deviceId, string inputName, long[] slotShape,
        OrtElementType inputType, IReadOnlyList<string> outputNames, ReadOnlySpan<byte> slots, int count)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count));
        var slotBytes = SessionBinding.SlotBytes(slotShape, inputType);
        if (count * slotBytes > int.MaxValue)
            throw new ArgumentException($"a batch of {count} is {count * slotBytes} bytes: a resident batch holds at most 2 GiB per tensor; use a smaller batch.", nameof(count));
        var inputBytes = (int)(count * slotBytes);
        if (slots.Length < inputBytes) throw new ArgumentException("batch buffer too small", nameof(slots));
        _session = session;
        _device = deviceId;
        if (provider == ExecutionProviderKind.Cuda)
        {
            _cuda = CudaRuntime.TryLoad(out var reason) ?? throw new ExecutionProviderException($"device-resident batch on CUDA: {reason}.");
            _memory = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, deviceId, OrtMemType.Default);
            _allocator = new OrtAllocator(session, _memory);
            _ownsAllocator = true;
            Memory = $"CUDA device {deviceId} memory";
        }
        else
        {
            _memory = OrtMemoryInfo.DefaultInstance;
            _allocator = OrtAllocator.DefaultInstance;
            Memory = "host memory";
        }
        _binding = session.CreateIoBinding();
        try
        {
            var input = Allocate(inputBytes);
            CopyIn(input, slots[..inputBytes]);
            Bind(inputName, inputType, [count, .. slotShape], input, isInput: true);
            foreach (var name in outputNames)
            {
                var meta = session.OutputMetadata[name];
                if (meta.ElementDataType != OrtElementType.Float)
                    throw new ArgumentException($"output '{name}' is {meta.ElementDataType}, not float32.");
                var shape = OutputShape(name, meta.Dimensions, count);
                var bytes = shape.Aggregate(1L, (a, b) => a * b) * sizeof(float);
                if (bytes > int.MaxValue)
                    throw new ArgumentException($"output '{name}' of a batch of {count} is {bytes} bytes: a resident batch holds at most 2 GiB per tensor; use a smaller batch.", nameof(count));
                var buffer = Allocate((int)bytes);
                Bind(name, OrtElementType.Float, shape, buffer, isInput: false);
                _outputs.Add((name, shape, buffer));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Where the input and outputs live, for reports: "CUDA device 0 memory" or "host memory".</summary>
    public string Memory { get; }

    /// <summary>Runs the model on the resident input into the resident outputs; returns when the device is done.</summary>
    public void Run() => _session.RunWithBinding(_runOptions, _binding);

    /// <summary>The last run's outputs, copied to the host, by output name.</summary>
    public IReadOnlyDictionary<string, HostTensor> CopyOutputs()
    {
        var copies = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        foreach (var (name, shape, buffer) in _outputs)
        {
            var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
            var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan());
            if (_cuda is not null)
            {
                try { _cuda.CopyToHost(_device, bytes, buffer.DangerousGetHandle()); }
                catch (CudaException e) { throw new ExecutionProviderException(e.Message, e); }
            }
            else unsafe { new ReadOnlySpan<byte>((void*)buffer.DangerousGetHandle(), bytes.Length).CopyTo(bytes); }
            copies[name] = new HostTensor(shape, values);
        }
        return copies;
    }

    // Every dimension but the batch must be fixed by the graph: the buffers are allocated before the first run.
    private static long[] OutputShape(string name, int[] dims, int count)
    {
        if (dims.Length == 0 || dims.Skip(1).Any(d => d <= 0))
            throw new ArgumentException($"output '{name}' has shape [{string.Join(", ", dims)}] in the graph: a device-resident batch needs every dimension but the batch fixed.");
        return [count, .. dims.Skip(1).Select(d => (long)d)];
    }

    private OrtMemoryAllocation Allocate(int bytes)
    {
        var allocation = _allocator.Allocate((uint)bytes);
        _allocations.Add(allocation);
        return allocation;
    }

    private void CopyIn(OrtMemoryAllocation destination, ReadOnlySpan<byte> source)
    {
        if (_cuda is not null)
        {
            try { _cuda.CopyToDevice(_device, destination.DangerousGetHandle(), source); }
            catch (CudaException e) { throw new ExecutionProviderException(e.Message, e); }
        }
        else unsafe { source.CopyTo(new Span<byte>((void*)destination.DangerousGetHandle(), source.Length)); }
    }

    private void Bind(string name, OrtElementType type, long[] shape, OrtMemoryAllocation buffer, bool isInput)
    {
        var value = OrtValue.CreateTensorValueWithData(_memory, type, shape, buffer.DangerousGetHandle(), buffer.Size);
        _values.Add(value);
        if (isInput) _binding.BindInput(name, value);
        else _binding.BindOutput(name, value);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _binding?.Dispose();
        foreach (var v in _values) v.Dispose();
        _values.Clear();
        foreach (var a in _allocations) a.Dispose();
        _allocations.Clear();
        _runOptions.Dispose();
        if (_ownsAllocator)
        {
            _allocator.Dispose();
            _memory.Dispose();
        }
    }
}
