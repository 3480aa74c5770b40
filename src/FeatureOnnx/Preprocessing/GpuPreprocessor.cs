using FeatureOnnx.Cuda;
using FeatureOnnx.Models;

namespace FeatureOnnx.Preprocessing;

/// <summary>
/// The GPU half of preprocessing for one model input: JPEGs decoded by nvJPEG (<see cref="GpuJpegBatchDecoder"/>),
/// then Resize + CenterCrop by Kernels/pil_resize.cu (PilResize's arithmetic, bit for bit, on the same decoded pixels),
/// written as uint8 HWC crops into device slot buffers that ONNX Runtime's CUDA provider takes as the model's input
/// (normalised inside the graph). The kernel source is compiled once by NVRTC for the device. All work is queued on
/// one CUDA stream and <see cref="Finish"/> waits for it, so ONNX Runtime (on its own stream) sees finished crops.
/// Images it cannot take are handed back to be decoded on the CPU; their crops are uploaded into their slots.
/// Not thread-safe: one batch at a time.
/// </summary>
internal sealed class GpuPreprocessor : IDisposable
{
    private readonly CudaDevice _device;
    private readonly CudaStream _stream;
    private readonly GpuJpegBatchDecoder _decoder;
    private readonly CudaModule _module;
    private readonly nint _horizontal;
    private readonly nint _vertical;
    private readonly GrowingDeviceBuffer _decoded;
    private readonly GrowingDeviceBuffer _temp;
    private readonly GrowingDeviceBuffer _jobs;
    private readonly GrowingDeviceBuffer _taps;
    private readonly GrowingDeviceBuffer _weights;
    private readonly PreprocessSpec _spec;
    private readonly ModelInput _input;
    private GpuDecoded[]? _pending;

    private GpuPreprocessor(CudaDevice device, NvJpegLibrary nvjpeg, byte[] cubin, ModelManifest manifest, string description)
    {
        _device = device;
        _spec = manifest.Preprocess;
        _input = manifest.Input;
        _decoded = new GrowingDeviceBuffer(device);
        _temp = new GrowingDeviceBuffer(device);
        _jobs = new GrowingDeviceBuffer(device);
        _taps = new GrowingDeviceBuffer(device);
        _weights = new GrowingDeviceBuffer(device);
        _stream = device.CreateStream();
        try
        {
            device.MakeCurrent(); // nvJPEG allocates through the CUDA runtime, in the context current on the calling thread
            _decoder = new GpuJpegBatchDecoder(nvjpeg);
            _module = device.LoadModule(cubin);
            _horizontal = _module.Function("pil_resize_horizontal");
            _vertical = _module.Function("pil_resize_vertical");
        }
        catch
        {
            _module?.Dispose();
            _decoder?.Dispose();
            _stream.Dispose();
            throw;
        }
        Description = $"{description}, {NvJpegLibrary.BackendName(_decoder.Backend)}" +
                      (_decoder.HardwareUnavailable is { } why ? $" (hardware backend unavailable: {why})" : "");
    }

    /// <summary>What decodes, for run.json: nvJPEG's version, file and backend.</summary>
    public string Description { get; }

    /// <summary>Bytes of one crop slot (height x width x 3).</summary>
    public int SlotBytes => _input.Height * _input.Width * 3;

    /// <summary>Images decoded on the GPU so far.</summary>
    public long DecodedOnGpu => _decoder.DecodedOnGpu;

    /// <summary>
    /// Loads the driver, nvJPEG and NVRTC, opens device <paramref name="deviceId"/> and compiles the resize kernel for it.
    /// </summary>
    /// <exception cref="DecoderUnavailableException">Something is missing; the message names it and the fix.</exception>
    public static GpuPreprocessor Create(ModelManifest manifest, int deviceId)
    {
        var driver = CudaDriver.TryLoad(out var reason) ?? throw Missing($"{reason} (the NVIDIA driver)", "install the NVIDIA driver");
        var nvjpeg = NvJpegLibrary.TryLoad(out reason);
        var nvrtc = nvjpeg is null ? null : NvrtcLibrary.TryLoad(out reason);
        var why = reason; // nvJPEG's reason when it is missing, else NVRTC's
        return CreateWith(driver, deviceId, manifest, nvjpeg, nvrtc, why, device =>
        {
            if (nvrtc is null) throw Missing(why, null);
            try
            {
                return nvrtc.CompileCubin(KernelSource(), "pil_resize.cu", device.ComputeCapability);
            }
            catch (NvrtcException e)
            {
                throw Missing($"NVRTC ({nvrtc.Library.Path}) could not compile the resize kernel for compute capability {device.ComputeCapability}: {e.Message}", null);
            }
        });
    }

    /// <summary>
    /// <see cref="Create"/> from loaded pieces: opens the device, then takes the kernel module from
    /// <paramref name="module"/> (NVRTC's cubin; the tests pass their C twin). A null library is missing for <paramref name="reason"/>.
    /// </summary>
    internal static GpuPreprocessor CreateWith(CudaDriver driver, int deviceId, ModelManifest manifest, NvJpegLibrary? nvjpeg, NvrtcLibrary? nvrtc,
        string reason, Func<CudaDevice, byte[]> module)
    {
        CudaDevice? device = null;
        try
        {
            device = driver.OpenDevice(deviceId);
            if (nvjpeg is null) throw Missing(reason, null);
            var image = module(device);
            var description = $"nvJPEG {nvjpeg.Version()} ({nvjpeg.Library.Path}, {nvjpeg.Library.Origin}) + PIL-exact CUDA resize" +
                              (nvrtc is null ? "" : $" (NVRTC {nvrtc.Version()})");
            return new GpuPreprocessor(device, nvjpeg, image, manifest, description);
        }
        catch (CudaException e)
        {
            device?.Dispose();
            throw Missing(e.Message, "check 'featureonnx providers'");
        }
        catch (NvJpegException e)
        {
            device?.Dispose();
            throw Missing($"nvJPEG failed to start: {e.Message}", null);
        }
        catch
        {
            device?.Dispose();
            throw;
        }
    }

    /// <summary>The kernel source shipped in the assembly.</summary>
    internal static string KernelSource()
    {
        using var stream = typeof(GpuPreprocessor).Assembly.GetManifestResourceStream("pil_resize.cu")
                           ?? throw new InvalidOperationException("the assembly lacks its pil_resize.cu resource");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    private static DecoderUnavailableException Missing(string what, string? fix) =>
        new($"the GPU decoder cannot run here: {what}{(fix is null ? "" : $"; {fix}")}.");

    /// <summary>Device memory for <paramref name="slots"/> crops, to be bound as the model input.</summary>
    public DeviceBuffer AllocateSlots(int slots) => _device.Allocate((long)slots * SlotBytes);

    /// <summary>
    /// Queues the decode of <paramref name="jpegs"/> (kept on the device until <see cref="Crop"/>); returns, per image,
    /// null (decoded on the GPU) or why it must be decoded on the CPU.
    /// </summary>
    public string?[] Decode(IReadOnlyList<ReadOnlyMemory<byte>> jpegs)
    {
        _device.MakeCurrent(); // the producer may run each batch on another thread
        _pending = _decoder.Decode(jpegs, new Memory(_decoded), _stream.DangerousGetHandle());
        return _pending.Select(d => d.CpuReason).ToArray();
    }

    /// <summary>
    /// Queues Resize + CenterCrop of the images the last <see cref="Decode"/> took, image i into slot
    /// <paramref name="slots"/>[i] of <paramref name="destination"/> (entries of images sent to the CPU are ignored).
    /// Call <see cref="Finish"/> before the slots are read.
    /// </summary>
    public void Crop(IReadOnlyList<int> slots, nint destination)
    {
        var decoded = _pending ?? throw new InvalidOperationException("Crop follows Decode.");
        _pending = null;
        var onGpu = Enumerable.Range(0, decoded.Length).Where(i => decoded[i].OnGpu).ToList();
        if (onGpu.Count == 0) return;
        var source = _decoded.Reserve(0); // the decode buffer, as the decoder reserved it
        var table = ResizeJobTable.Build(
            onGpu.Select(i => ResizeSource.ForCrop(decoded[i].Offset, decoded[i].Pitch, decoded[i].Width, decoded[i].Height, _spec, _input)).ToList(),
            _spec.Interpolation, onGpu.Select(i => slots[i]).ToList());
        var jobs = Upload(_jobs, table.Jobs.AsSpan());
        var taps = Upload(_taps, table.Taps.AsSpan());
        var weights = Upload(_weights, table.Weights.AsSpan());
        var temp = _temp.Reserve(table.TempBytes);
        Launch(_horizontal, "pil_resize_horizontal", table.HorizontalGrid(), [source, temp, jobs, taps, weights], []);
        Launch(_vertical, "pil_resize_vertical", table.VerticalGrid(_input.Width, _input.Height), [temp, destination, jobs, taps, weights], [_input.Width, _input.Height]);
    }

    /// <summary>Copies a crop made on the CPU into slot <paramref name="slot"/> of <paramref name="destination"/>.</summary>
    public void Upload(nint destination, int slot, ReadOnlySpan<byte> crop) =>
        _device.CopyToDevice(destination + (nint)((long)slot * SlotBytes), crop[..SlotBytes], _stream);

    /// <summary>Waits until every decode, resize and upload queued so far is done.</summary>
    public void Finish() => _stream.Synchronize();

    private nint Upload<T>(GrowingDeviceBuffer buffer, ReadOnlySpan<T> values) where T : unmanaged
    {
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(values);
        var pointer = buffer.Reserve(Math.Max(bytes.Length, 4));
        _device.CopyToDevice(pointer, bytes, _stream);
        return pointer;
    }

    private unsafe void Launch(nint function, string name, (int X, int Y, int Z) grid, nint[] pointers, int[] ints)
    {
        // cuLaunchKernel takes the address of each argument's value: device pointers first, then the ints.
        var values = new long[pointers.Length];
        for (var i = 0; i < pointers.Length; i++) values[i] = pointers[i];
        fixed (long* p = values) fixed (int* n = ints)
        {
            var arguments = new nint[pointers.Length + ints.Length];
            for (var i = 0; i < pointers.Length; i++) arguments[i] = (nint)(p + i);
            for (var i = 0; i < ints.Length; i++) arguments[pointers.Length + i] = (nint)(n + i);
            _device.Launch(function, name, grid, ResizeJobTable.BlockWidth, _stream, arguments);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try { _stream.Synchronize(); }
        catch (CudaException) { } // a broken device still gets its handles released
        _weights.Dispose();
        _taps.Dispose();
        _jobs.Dispose();
        _temp.Dispose();
        _decoded.Dispose();
        _module.Dispose();
        _decoder.Dispose();
        _stream.Dispose();
        _device.Dispose();
    }

    private sealed class Memory(GrowingDeviceBuffer buffer) : IDecodeMemory
    {
        public nint Reserve(long bytes) => buffer.Reserve(bytes);
    }
}
