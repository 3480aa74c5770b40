using FeatureOnnx.Models;

namespace FeatureOnnx.Preprocessing;

/// <summary>
/// Writes an 8-bit RGB crop into one float slot of an input batch: ToTensor then Normalize, computed in float32
/// exactly as torch does (<c>(p / divisor - mean) / std</c>), in the manifest's layout and channel order.
/// </summary>
public sealed class TensorWriter
{
    private readonly float[][] _lookup; // [rgb channel][byte value] -> normalised value
    private readonly int[] _sourceChannel; // tensor channel -> RGB channel
    private readonly ModelInput _input;

    /// <summary>Creates a writer for one model input.</summary>
    public TensorWriter(ModelInput input, PreprocessSpec spec)
    {
        _input = input;
        _lookup = new float[3][];
        for (var c = 0; c < 3; c++)
        {
            _lookup[c] = new float[256];
            var mean = spec.Mean[c];
            var std = spec.Std[c];
            for (var v = 0; v < 256; v++)
                _lookup[c][v] = (v / spec.PixelDivisor - mean) / std;
        }
        _sourceChannel = spec.ChannelOrder == ChannelOrder.Rgb ? [0, 1, 2] : [2, 1, 0];
    }

    /// <summary>Number of floats in one slot.</summary>
    public int SlotLength => 3 * _input.Height * _input.Width;

    /// <summary>Writes <paramref name="rgb"/> (HWC, Height x Width x 3) into <paramref name="slot"/>.</summary>
    public void Write(ReadOnlySpan<byte> rgb, Span<float> slot)
    {
        var plane = _input.Height * _input.Width;
        if (rgb.Length < plane * 3) throw new ArgumentException("crop smaller than the model input", nameof(rgb));
        if (slot.Length < plane * 3) throw new ArgumentException("slot smaller than the model input", nameof(slot));
        if (_input.Layout == TensorLayout.Nchw)
        {
            for (var c = 0; c < 3; c++)
            {
                var src = _sourceChannel[c];
                var lut = _lookup[src];
                var dst = slot.Slice(c * plane, plane);
                for (int i = 0, p = src; i < plane; i++, p += 3)
                    dst[i] = lut[rgb[p]];
            }
        }
        else
        {
            for (int i = 0, p = 0; i < plane; i++, p += 3)
                for (var c = 0; c < 3; c++)
                {
                    var src = _sourceChannel[c];
                    slot[p + c] = _lookup[src][rgb[p + src]];
                }
        }
    }
}
