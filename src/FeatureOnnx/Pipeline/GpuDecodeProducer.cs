using System.Diagnostics;
using System.Threading.Channels;
using FeatureOnnx.Cuda;
using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Runtime;
using FeatureOnnx.Sources;

namespace FeatureOnnx.Pipeline;

/// <summary>
/// The producer of <see cref="ExtractionPipeline"/> when images are decoded on the GPU. Per batch: the decode workers
/// read each file and check its header (every check of <see cref="ImageDecoder.Identify"/>: format, pixel limit,
/// structure); JPEGs that need no EXIF rotation go to nvJPEG, and everything else (other formats, rotated JPEGs, what
/// nvJPEG refuses or fails on) is decoded and cropped on the workers exactly as the CPU path does, so its failures land
/// in errors.csv with the CPU path's reasons. The crops of both end up, in input order, in a device slot buffer that
/// the consumer binds as the model input (<see cref="FeatureSession.RunDevice"/>).
/// </summary>
internal sealed class GpuDecodeProducer : IDisposable
{
    // Batches alive at once: those queued in the channel, the one the consumer runs and the one being filled.
    private const int SlotBuffers = 4;

    private readonly GpuPreprocessor _gpu;
    private readonly DeviceBuffer[] _slots;
    private long _cpuDecoded;

    /// <summary>A producer over <paramref name="gpu"/> (which it then owns) for batches of up to <paramref name="batchSize"/>.</summary>
    internal GpuDecodeProducer(GpuPreprocessor gpu, int batchSize)
    {
        _gpu = gpu;
        _slots = new DeviceBuffer[SlotBuffers];
        try
        {
            for (var i = 0; i < SlotBuffers; i++) _slots[i] = gpu.AllocateSlots(batchSize);
        }
        catch
        {
            foreach (var s in _slots) s?.Dispose();
            throw;
        }
    }

    private long _decodeTicks;
    private bool _disposed;

    /// <summary>Busy time of the decode stage (reading and header checks on the workers, CPU decodes, GPU decode and resize), in Stopwatch ticks.</summary>
    public long DecodeTicks => Interlocked.Read(ref _decodeTicks);

    /// <summary>What decoded, for run.json's decoders: nvJPEG and how many images each side took.</summary>
    public string Summary => $"{_gpu.Description}; {_gpu.DecodedOnGpu} image(s) decoded on the GPU, {Interlocked.Read(ref _cpuDecoded)} on the CPU";

    /// <summary>
    /// The GPU producer for this run, or null for the CPU path: <see cref="DecodeDevice.Cpu"/>, tensors in, or
    /// <see cref="DecodeDevice.Auto"/> where the GPU decoder cannot run (a warning says why when the run is on CUDA).
    /// </summary>
    /// <exception cref="DecoderUnavailableException"><see cref="DecodeDevice.Gpu"/> was asked for, it cannot run and no fallback was allowed.</exception>
    public static GpuDecodeProducer? Choose(ExtractionOptions options, ModelManifest manifest, bool uint8, List<string> warnings)
    {
        if (options.TensorsIn is not null || options.Decoder == DecodeDevice.Cpu) return null;
        var obstacle = options.Session.Provider != ExecutionProviderKind.Cuda ? "it feeds the CUDA execution provider, and this run is on the CPU provider"
            : !uint8 ? "it writes 8-bit crops that the graph normalises (uint8 input), which this run turned off"
            : options.DecodeScale.Mode != DecodeScaleMode.Exact ? $"it decodes at full size, and decode scale {options.DecodeScale} was asked for"
            // A captured graph replays with the input address it was captured with; the decoder rotates its slot buffers.
            : options.Session.Cuda.EnableCudaGraph == true ? "it hands each batch over in one of several device buffers, and a CUDA graph (enable_cuda_graph) needs one fixed input address"
            : null;
        if (obstacle is null)
        {
            GpuPreprocessor? gpu = null;
            try
            {
                gpu = GpuPreprocessor.Create(manifest, options.Session.DeviceId);
                return new GpuDecodeProducer(gpu, options.BatchSize);
            }
            catch (DecoderUnavailableException e)
            {
                obstacle = e.Message;
            }
            catch (CudaException e)
            {
                gpu?.Dispose();
                obstacle = $"the GPU decoder cannot allocate its buffers: {e.Message}";
            }
        }
        else obstacle = $"the GPU decoder cannot run here: {obstacle}.";
        if (options.Decoder == DecodeDevice.Auto)
        {
            if (options.Session.Provider == ExecutionProviderKind.Cuda) warnings.Add($"images decoded on the CPU: {obstacle}");
            return null;
        }
        if (options.DecoderFallbackToCpu)
        {
            warnings.Add($"{obstacle} Decoding on the CPU instead.");
            return null;
        }
        throw new DecoderUnavailableException(obstacle);
    }

    /// <summary>Fills batches of <paramref name="items"/> until they run out or <paramref name="stop"/> is cancelled.</summary>
    public async Task RunAsync(IReadOnlyList<InputItem> items, int batchSize, DecodeWorkers workers, ImagePreprocessor cpu,
        Func<InputItem, long, byte[]> read, long maxFileBytes, ChannelWriter<ExtractionPipeline.DecodedBatch> output, CancellationToken stop)
    {
        var staging = new byte[batchSize * _gpu.SlotBytes];
        var number = 0;
        foreach (var chunk in items.Chunk(batchSize))
        {
            if (stop.IsCancellationRequested) break;
            var n = chunk.Length;
            var bytes = new byte[]?[n];
            var reasons = new string?[n];
            var toGpu = new bool[n];
            // 1. Read and check headers on the workers.
            workers.For(n, i =>
            {
                var start = Stopwatch.GetTimestamp();
                try
                {
                    bytes[i] = read(chunk[i], maxFileBytes);
                    var header = cpu.Decoder.Identify(bytes[i]);
                    toGpu[i] = header.Format == "JPEG" && (header.Orientation == 1 || !cpu.Spec.ApplyExifOrientation);
                }
                catch (Exception e)
                {
                    reasons[i] = bytes[i] is null ? InputSelection.ReadFailure(e) : ExtractionPipeline.DecodeFailure(e, bytes[i]!.Length);
                }
                Interlocked.Add(ref _decodeTicks, Stopwatch.GetTimestamp() - start);
            }, stop);
            // 2. nvJPEG takes the JPEGs it can; the rest join the CPU's share.
            var gpuIndices = Enumerable.Range(0, n).Where(i => reasons[i] is null && toGpu[i]).ToList();
            var t0 = Stopwatch.GetTimestamp();
            var refused = gpuIndices.Count > 0 ? _gpu.Decode(gpuIndices.Select(i => (ReadOnlyMemory<byte>)bytes[i]!).ToList()) : [];
            Interlocked.Add(ref _decodeTicks, Stopwatch.GetTimestamp() - t0);
            var onGpu = new bool[n];
            for (var k = 0; k < gpuIndices.Count; k++) onGpu[gpuIndices[k]] = refused[k] is null;
            // 3. The CPU's share, decoded and cropped exactly as the CPU path does, into staging slots by input index.
            var cpuIndices = Enumerable.Range(0, n).Where(i => reasons[i] is null && !onGpu[i]).ToList();
            workers.For(cpuIndices.Count, k =>
            {
                var start = Stopwatch.GetTimestamp();
                var i = cpuIndices[k];
                reasons[i] = ExtractionPipeline.CropInto(cpu, bytes[i]!, staging.AsSpan(i * _gpu.SlotBytes, _gpu.SlotBytes), uint8: true);
                Interlocked.Add(ref _decodeTicks, Stopwatch.GetTimestamp() - start);
            }, stop);
            // 4. Slots in input order, failures left out; GPU crops written by the kernel, CPU crops uploaded.
            var slotOf = new int[n];
            var good = new List<InputItem>(n);
            var bad = new List<InputProblem>();
            for (var i = 0; i < n; i++)
            {
                if (reasons[i] is { } reason) { bad.Add(new InputProblem(chunk[i].Key, reason)); slotOf[i] = -1; continue; }
                slotOf[i] = good.Count;
                good.Add(chunk[i]);
            }
            var destination = _slots[number++ % SlotBuffers].Pointer;
            t0 = Stopwatch.GetTimestamp();
            if (gpuIndices.Count > 0) _gpu.Crop(gpuIndices.Select(i => slotOf[i]).ToList(), destination);
            foreach (var i in cpuIndices.Where(i => slotOf[i] >= 0))
                _gpu.Upload(destination, slotOf[i], staging.AsSpan(i * _gpu.SlotBytes, _gpu.SlotBytes));
            _gpu.Finish();
            Interlocked.Add(ref _decodeTicks, Stopwatch.GetTimestamp() - t0);
            Interlocked.Add(ref _cpuDecoded, cpuIndices.Count(i => slotOf[i] >= 0));
            await output.WriteAsync(new ExtractionPipeline.DecodedBatch([], good, bad, destination), stop);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var s in _slots) s?.Dispose();
        _gpu.Dispose();
    }
}
