namespace FeatureOnnx.Runtime;

/// <summary>
/// An execution provider and device as text names them: <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c> (as ONNX Runtime's
/// provider options parse their own strings, so every front end reads them the same way).
/// </summary>
/// <param name="Kind">The provider.</param>
/// <param name="DeviceId">CUDA device ordinal (0 for the CPU).</param>
public readonly record struct ExecutionProviderSpec(ExecutionProviderKind Kind, int DeviceId = 0)
{
    /// <summary>Parses <c>cpu</c>, <c>cuda</c> (device 0) or <c>cuda:N</c>, case-insensitively.</summary>
    /// <exception cref="FormatException">Anything else; the message says what is accepted, without repeating the text.</exception>
    public static ExecutionProviderSpec Parse(string text)
    {
        var parts = text.Trim().Split(':', 2);
        return parts[0].ToLowerInvariant() switch
        {
            "cpu" when parts.Length == 1 => new(ExecutionProviderKind.Cpu),
            "cuda" when parts.Length == 1 => new(ExecutionProviderKind.Cuda),
            "cuda" => int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var d)
                ? new(ExecutionProviderKind.Cuda, d)
                : throw new FormatException("the device must be a number, e.g. cuda:0."),
            _ => throw new FormatException("use cpu or cuda[:DEVICE]."),
        };
    }

    /// <summary><c>cpu</c> or <c>cuda:N</c>.</summary>
    public override string ToString() => Kind == ExecutionProviderKind.Cpu ? "cpu" : $"cuda:{DeviceId}";
}
