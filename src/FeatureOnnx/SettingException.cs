namespace FeatureOnnx;

/// <summary>
/// A setting of an options object holds a value the library cannot use. <see cref="Setting"/> names it as
/// <c>Type.Property</c> (e.g. <c>BenchmarkRequest.Precisions</c>) and the message says why and what to do, in the
/// library's words; a front end that spells the setting its own way (a command-line flag) adds that name.
/// </summary>
public sealed class SettingException(string setting, string message, Exception? inner = null) : ArgumentException(message, inner)
{
    /// <summary>The setting, as <c>Type.Property</c>.</summary>
    public string Setting { get; } = setting;
}
