using Microsoft.ML.OnnxRuntime;
using OrtElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace FeatureOnnx.Runtime;

/// <summary>
/// An IOBinding whose input is device memory the caller filled (the GPU decoder's uint8 crops): the input value
/// wraps the caller's CUDA pointer without a copy, the outputs come back in host memory. The binding is rebuilt only
/// when the pointer or the batch size changes. Not thread-safe: one run at a time.
/// </summary>
internal sealed class DeviceInputBinding : IDisposable
{
    private readonly InferenceSession _session;
    private readonly OrtIoBinding _binding;
    private readonly OrtMemoryInfo _memory;
    private readonly string _inputName;
    private readonly long[] _slotShape;
    private readonly OrtElementType _elementType;
    private readonly int _slotBytes;
    private readonly IReadOnlyList<string> _outputNames;
    private OrtValue? _input;
    private nint _boundPointer;
    private int _boundCount;

    public DeviceInputBinding(InferenceSession session, int deviceId, string inputName, long[] slotShape, OrtElementType elementType, IReadOnlyList<string> outputNames)
    {
        _session = session;
        _inputName = inputName;
        _slotShape = slotShape;
        _elementType = elementType;
        _outputNames = outputNames;
        _slotBytes = (int)SessionBinding.SlotBytes(slotShape, elementType);
        _memory = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, deviceId, OrtMemType.Default);
        _binding = session.CreateIoBinding();
    }

    /// <summary>Runs on the <paramref name="count"/> slots at <paramref name="devicePointer"/>; outputs in host memory, owned by the caller.</summary>
    public IDisposableReadOnlyCollection<OrtValue> Run(RunOptions runOptions, nint devicePointer, int count)
    {
        if (_input is null || _boundPointer != devicePointer || _boundCount != count)
        {
            _binding.ClearBoundInputs();
            _input?.Dispose();
            _input = OrtValue.CreateTensorValueWithData(_memory, _elementType, [count, .. _slotShape], devicePointer, (long)count * _slotBytes);
            _binding.BindInput(_inputName, _input);
            _boundPointer = devicePointer;
            _boundCount = count;
        }
        return SessionBinding.RunToHost(_session, _binding, _outputNames, runOptions);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _binding.Dispose();
        _input?.Dispose();
        _memory.Dispose();
    }
}
