using FeatureOnnx.Cuda;

namespace FeatureOnnx.Preprocessing;

/// <summary>Memory that nvJPEG decodes into: device memory on a GPU (the tests' fake nvJPEG writes host memory).</summary>
internal interface IDecodeMemory
{
    /// <summary>The base address of a buffer of at least <paramref name="bytes"/> bytes; earlier contents need not survive.</summary>
    nint Reserve(long bytes);
}

/// <summary>Where one JPEG of a batch went: its interleaved RGB pixels at <see cref="Offset"/> of the decode memory, or
/// <see cref="CpuReason"/> saying why it must be decoded on the CPU.</summary>
/// <param name="Offset">Byte offset of the first row.</param>
/// <param name="Pitch">Bytes per row.</param>
/// <param name="Width">Columns.</param>
/// <param name="Height">Rows.</param>
/// <param name="CpuReason">Null when decoded on the GPU.</param>
internal readonly record struct GpuDecoded(long Offset, int Pitch, int Width, int Height, string? CpuReason)
{
    /// <summary>Decoded on the GPU.</summary>
    public bool OnGpu => CpuReason is null;
}

/// <summary>
/// Decodes batches of JPEGs with nvJPEG's batched API into one buffer of interleaved RGB rows (nvJPEG's RGBI
/// output; greyscale comes out as R = G = B, as PIL's convert('RGB')). Each image nvJPEG cannot take is routed to
/// the CPU with a reason: one whose header nvJPEG cannot read, CMYK/YCCK, one the hardware backend does not support
/// (nvjpegDecodeBatchedSupported: progressive, 4:1:1, ...). nvjpegDecodeBatched reports one status for a whole
/// batch, so when it fails each image is decoded again alone: those that fail alone go to the CPU, the rest are kept.
/// The hardware backend (the JPEG engines of A100/H100) is asked for first; the default backend is used where the GPU has none.
/// Not thread-safe: one batch at a time.
/// </summary>
internal sealed class GpuJpegBatchDecoder : IDisposable
{
    /// <summary>Row pitch and image alignment in the decode buffer (bytes).</summary>
    public const int Alignment = 256;

    private readonly NvJpegHandle _handle;
    private readonly NvJpegState _batched;
    private readonly NvJpegState _single;
    private readonly NvJpegStream _stream;
    private int _batchedSize;
    private bool _singleReady;

    /// <summary>Creates the nvJPEG handle (hardware backend when <paramref name="preferHardware"/> and available) and its states.</summary>
    /// <exception cref="NvJpegException">nvJPEG could not create a handle or state.</exception>
    public GpuJpegBatchDecoder(NvJpegLibrary library, bool preferHardware = true)
    {
        _handle = library.CreateHandle(preferHardware ? NvJpegBackend.Hardware : NvJpegBackend.Default);
        try
        {
            _batched = _handle.CreateState();
            _single = _handle.CreateState();
            _stream = _handle.CreateStream();
        }
        catch
        {
            _batched?.Dispose();
            _single?.Dispose();
            _handle.Dispose();
            throw;
        }
    }

    /// <summary>The backend decoding.</summary>
    public NvJpegBackend Backend => _handle.Backend;

    /// <summary>Why the hardware backend is not in use, when it was asked for.</summary>
    public string? HardwareUnavailable => _handle.HardwareUnavailable;

    /// <summary>Images decoded on the GPU so far.</summary>
    public long DecodedOnGpu { get; private set; }

    /// <summary>Batches whose batched decode failed and were decoded image by image.</summary>
    public long BatchesRetried { get; private set; }

    /// <summary>
    /// Decodes <paramref name="jpegs"/> into <paramref name="memory"/>, ordered on <paramref name="cudaStream"/> (the
    /// pixels are there once work queued after this on that stream runs). One result per input, in order.
    /// </summary>
    public GpuDecoded[] Decode(IReadOnlyList<ReadOnlyMemory<byte>> jpegs, IDecodeMemory memory, nint cudaStream)
    {
        var results = new GpuDecoded[jpegs.Count];
        var accepted = new List<int>(jpegs.Count);
        long total = 0;
        for (var i = 0; i < jpegs.Count; i++)
        {
            var span = jpegs[i].Span;
            var status = _handle.ImageInfo(span, out var info);
            string? reason = null;
            if (status != NvJpegStatus.Success) reason = $"nvjpegGetImageInfo returned {NvJpegLibrary.StatusName(status)}";
            else if (info.Components is not (1 or 3)) reason = $"{info.Components} colour components (nvJPEG decodes 1 or 3)";
            else if (info.Width <= 0 || info.Height <= 0) reason = $"nvJPEG reads a size of {info.Width}x{info.Height}";
            else if (Backend is NvJpegBackend.Hardware or NvJpegBackend.HardwareDevice)
            {
                status = _handle.BatchedSupported(_stream, span, out var supported);
                if (status != NvJpegStatus.Success) reason = $"nvjpegJpegStreamParseHeader returned {NvJpegLibrary.StatusName(status)}";
                else if (!supported) reason = $"not supported by nvJPEG's hardware decoder ({info.Subsampling}, or progressive)";
            }
            if (reason is not null) { results[i] = new GpuDecoded(0, 0, 0, 0, reason); continue; }
            var pitch = (info.Width * 3 + Alignment - 1) / Alignment * Alignment;
            results[i] = new GpuDecoded(total, pitch, info.Width, info.Height, null);
            total += ((long)pitch * info.Height + Alignment - 1) / Alignment * Alignment;
            accepted.Add(i);
        }
        if (accepted.Count == 0) return results;
        var baseAddress = memory.Reserve(total);
        var destinations = accepted.Select(i => NvJpegImage.Interleaved(baseAddress + (nint)results[i].Offset, results[i].Pitch)).ToArray();
        if (_batchedSize != accepted.Count)
        {
            _batched.InitializeBatched(accepted.Count, NvJpegOutputFormat.Rgbi); // nvjpegDecodeBatched decodes exactly this many
            _batchedSize = accepted.Count;
        }
        var batchStatus = _batched.DecodeBatched(accepted.Select(i => jpegs[i]).ToList(), destinations, cudaStream);
        if (batchStatus == NvJpegStatus.Success)
        {
            DecodedOnGpu += accepted.Count;
            return results;
        }
        // One status for the batch: find the image(s) at fault by decoding each alone.
        BatchesRetried++;
        if (!_singleReady)
        {
            _single.InitializeBatched(1, NvJpegOutputFormat.Rgbi);
            _singleReady = true;
        }
        for (var k = 0; k < accepted.Count; k++)
        {
            var i = accepted[k];
            var status = _single.DecodeBatched([jpegs[i]], destinations.AsSpan(k, 1), cudaStream);
            if (status == NvJpegStatus.Success) DecodedOnGpu++;
            else results[i] = results[i] with { CpuReason = $"nvjpegDecodeBatched returned {NvJpegLibrary.StatusName(status)}" };
        }
        return results;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _stream.Dispose();
        _single.Dispose();
        _batched.Dispose();
        _handle.Dispose();
    }
}
