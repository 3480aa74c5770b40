namespace FeatureOnnx.Cuda;

/// <summary>Device memory that is replaced by a larger allocation when more is asked for (contents not kept).
/// The caller makes sure no queued work still uses the old one (it synchronises its stream per batch).</summary>
internal sealed class GrowingDeviceBuffer(CudaDevice device) : IDisposable
{
    private DeviceBuffer? _buffer;

    /// <summary>The address of at least <paramref name="bytes"/> bytes (grown by half again when it grows, to avoid reallocating every batch).</summary>
    public nint Reserve(long bytes)
    {
        if (_buffer is not null && _buffer.Bytes >= bytes) return _buffer.Pointer;
        _buffer?.Dispose();
        _buffer = null;
        _buffer = device.Allocate(Math.Max(bytes + bytes / 2, 1 << 20));
        return _buffer.Pointer;
    }

    /// <inheritdoc />
    public void Dispose() => _buffer?.Dispose();
}
