using System.Text.Json;
using System.Text.Json.Serialization;

namespace FeatureOnnx.Sinks;

/// <summary>Writes run.json atomically (temporary file, then rename), camelCase, indented.</summary>
public static class RunSummary
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Serialises <paramref name="summary"/> to <paramref name="path"/>.</summary>
    public static void Write<T>(string path, T summary)
    {
        var tmp = path + ".partial";
        File.WriteAllText(tmp, JsonSerializer.Serialize(summary, Options) + "\n");
        File.Move(tmp, path, overwrite: true);
    }
}
