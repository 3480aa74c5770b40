using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace FeatureOnnx.Sinks;

/// <summary>Writes run.json atomically (temporary file, then rename), camelCase, indented.</summary>
public static class RunSummary
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        TypeInfoResolver = JsonMetadata.Default,
    };

    /// <summary>Serialises <paramref name="summary"/> to <paramref name="path"/>; <typeparamref name="T"/> must be listed
    /// in <see cref="JsonMetadata"/>.</summary>
    public static void Write<T>(string path, T summary)
    {
        var tmp = path + ".partial";
        File.WriteAllText(tmp, JsonSerializer.Serialize(summary, (JsonTypeInfo<T>)Options.GetTypeInfo(typeof(T))) + "\n");
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Reads a file written by <see cref="Write{T}"/>.</summary>
    public static T? Read<T>(string path) =>
        JsonSerializer.Deserialize(File.ReadAllText(path), (JsonTypeInfo<T>)Options.GetTypeInfo(typeof(T)));
}
