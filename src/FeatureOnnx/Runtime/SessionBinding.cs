using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using OrtElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace FeatureOnnx.Runtime;

/// <summary>
/// The IOBinding of one <see cref="FeatureSession"/>: a reusable input buffer that batches are copied into and that
/// stays bound between runs, and outputs bound to host memory. On CUDA the buffer is page-locked host memory from
/// the provider's <c>CudaPinned</c> allocator, so the host-to-device copy is a direct DMA; the outputs are produced on
/// the device and copied to the host once, at the end of the run (reading device memory from C# would need
/// <c>OrtEnv.CopyTensors</c>, which only knows providers registered as plugin libraries). On the CPU the buffer is
/// 64-byte aligned native memory. Each run gets newly allocated outputs, which the caller owns. Not thread-safe: one run at a time, as <see cref="FeatureSession"/> is used.
/// </summary>
internal sealed unsafe class SessionBinding : IDisposable
{
    private const int Alignment = 64;

    private readonly InferenceSession _session;
    private readonly OrtIoBinding _binding;
    private readonly string _inputName;
    private readonly long[] _slotShape;
    private readonly OrtElementType _elementType;
    private readonly IReadOnlyList<string> _outputNames;
    private readonly int _slotBytes;
    private readonly OrtMemoryInfo? _pinnedInfo;
    private readonly OrtAllocator? _pinnedAllocator;
    private OrtMemoryAllocation? _pinned;
    private void* _native;
    private int _capacity; // slots the buffer holds
    private OrtValue? _input;
    private int _boundCount;

    /// <summary>Binds <paramref name="outputNames"/> to host memory and prepares the input buffer's allocator.</summary>
    public SessionBinding(InferenceSession session, ExecutionProviderKind provider, int deviceId, string inputName, long[] slotShape,
        OrtElementType elementType, IReadOnlyList<string> outputNames)
    {
        _session = session;
        _inputName = inputName;
        _slotShape = slotShape;
        _elementType = elementType;
        _outputNames = outputNames;
        _slotBytes = (int)SlotBytes(slotShape, elementType);
        _binding = session.CreateIoBinding();
        try
        {
            if (provider == ExecutionProviderKind.Cuda)
            {
                _pinnedInfo = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA_PINNED, OrtAllocatorType.DeviceAllocator, deviceId, OrtMemType.CpuOutput);
                try
                {
                    _pinnedAllocator = new OrtAllocator(session, _pinnedInfo);
                    InputMemory = "CUDA pinned host memory";
                }
                catch (OnnxRuntimeException e)
                {
                    _pinnedInfo.Dispose();
                    _pinnedInfo = null;
                    InputMemory = $"host memory (the session has no CudaPinned allocator: {e.Message.Split('\n')[0]})";
                }
            }
            else
            {
                InputMemory = "host memory";
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Where the input buffer lives, for diagnostics.</summary>
    public string InputMemory { get; } = "";

    /// <summary>Copies the first <paramref name="count"/> slots of <paramref name="slots"/> into the bound buffer and runs.</summary>
    public IDisposableReadOnlyCollection<OrtValue> Run(RunOptions runOptions, ReadOnlySpan<byte> slots, int count)
    {
        EnsureCapacity(count);
        var bytes = count * _slotBytes;
        slots[..bytes].CopyTo(new Span<byte>(Buffer, bytes));
        if (_input is null || _boundCount != count)
        {
            _input?.Dispose();
            _input = null;
            long[] shape = [count, .. _slotShape];
            _input = OrtValue.CreateTensorValueWithData(_pinnedInfo ?? OrtMemoryInfo.DefaultInstance, _elementType, shape, (IntPtr)Buffer, bytes);
            _binding.BindInput(_inputName, _input);
            _boundCount = count;
        }
        return RunToHost(_session, _binding, _outputNames, runOptions);
    }

    /// <summary>Bytes of one input slot: the shape's element count times 1 (uint8) or 4 (float32).</summary>
    internal static long SlotBytes(long[] slotShape, OrtElementType elementType) =>
        slotShape.Aggregate(1L, (a, b) => a * b) * (elementType == OrtElementType.UInt8 ? 1 : sizeof(float));

    /// <summary>Runs <paramref name="binding"/> with <paramref name="outputNames"/> bound afresh to host memory; the outputs are the caller's.</summary>
    internal static IDisposableReadOnlyCollection<OrtValue> RunToHost(InferenceSession session, OrtIoBinding binding, IReadOnlyList<string> outputNames, RunOptions runOptions)
    {
        // After a run the binding holds that run's output values: bind fresh ones, so that a batch of another size
        // gets outputs of its own shape and no earlier BatchOutputs a caller still holds is overwritten.
        binding.ClearBoundOutputs();
        foreach (var name in outputNames)
            binding.BindOutputToDevice(name, OrtMemoryInfo.DefaultInstance);
        return session.RunWithBoundResults(runOptions, binding);
    }

    private void* Buffer => _pinned is not null ? (void*)_pinned.DangerousGetHandle() : _native;

    private void EnsureCapacity(int count)
    {
        if (count <= _capacity) return;
        // The bound value points into the old buffer: unbind it before the buffer goes.
        _binding.ClearBoundInputs();
        _input?.Dispose();
        _input = null;
        FreeBuffer();
        var bytes = (long)count * _slotBytes;
        if (_pinnedAllocator is not null)
            _pinned = _pinnedAllocator.Allocate(checked((uint)bytes));
        else
            _native = NativeMemory.AlignedAlloc((nuint)bytes, Alignment);
        _capacity = count;
    }

    private void FreeBuffer()
    {
        _pinned?.Dispose();
        _pinned = null;
        if (_native is not null) NativeMemory.AlignedFree(_native);
        _native = null;
        _capacity = 0;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _binding.Dispose();
        _input?.Dispose();
        _input = null;
        FreeBuffer();
        _pinnedAllocator?.Dispose();
        _pinnedInfo?.Dispose();
    }
}
