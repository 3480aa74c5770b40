using System.Text.Json.Serialization;
using FeatureOnnx.Models;
using FeatureOnnx.Pipeline;

namespace FeatureOnnx;

/// <summary>
/// Compile-time JSON metadata for the files FeatureOnnx reads and writes (model manifests, run.json). Reflection-based
/// System.Text.Json is switched off in a trimmed publish, so serialisation goes through this context; the options
/// (naming, enums as strings, comments) stay in the <see cref="System.Text.Json.JsonSerializerOptions"/> that use it.
/// </summary>
[JsonSerializable(typeof(ModelManifest))]
[JsonSerializable(typeof(PrecisionConversion))]
[JsonSerializable(typeof(PreparedFacts))]
[JsonSerializable(typeof(ExtractionResult))]
[JsonSerializable(typeof(MergeResult))]
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(FeatureOnnx.Benchmarking.BenchmarkReport))]
internal sealed partial class JsonMetadata : JsonSerializerContext;
