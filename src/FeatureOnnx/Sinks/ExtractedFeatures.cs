using System.Globalization;
using FeatureOnnx.Formats;

namespace FeatureOnnx.Sinks;

/// <summary>
/// One output of a finished extraction read back whole: the rows of <c>OUTPUT.npy</c> with the input each came from
/// (index.csv). For evaluation and comparison of runs that fit in memory; a streaming consumer reads the .npy with
/// <see cref="NpyReader"/> instead.
/// </summary>
/// <param name="Folder">The output folder.</param>
/// <param name="Output">The output's name (the .npy file's name without extension).</param>
/// <param name="Keys">The input of each row, as index.csv names it (a path, or a tar member).</param>
/// <param name="RowShape">The shape of one row.</param>
/// <param name="Values">Every row, flattened, in row order.</param>
public sealed record ExtractedFeatures(string Folder, string Output, IReadOnlyList<string> Keys, IReadOnlyList<long> RowShape, float[] Values)
{
    /// <summary>Rows (inputs extracted).</summary>
    public int Rows => Keys.Count;

    /// <summary>Floats per row.</summary>
    public int Width => Rows == 0 ? 0 : Values.Length / Rows;

    /// <summary>
    /// Reads <paramref name="output"/> of the run in <paramref name="folder"/>; with no name, the run's only output
    /// (a run with several must be told which).
    /// </summary>
    /// <exception cref="FileNotFoundException">The folder holds no run.json (not an output folder) or the .npy is missing.</exception>
    /// <exception cref="InvalidDataException">The run did not finish, names no such output, or its index and .npy disagree.</exception>
    /// <exception cref="ArgumentException">No output named and the run wrote several.</exception>
    public static ExtractedFeatures Load(string folder, string? output = null)
    {
        var outputs = FeatureOutputFolder.ReadFinished(folder, before: "first").Layers.Keys.ToList();
        if (output is null)
        {
            if (outputs.Count != 1)
                throw new ArgumentException($"{folder} holds {outputs.Count} outputs ({string.Join(", ", outputs)}); name the one to read.");
            output = outputs[0];
        }
        else if (!outputs.Contains(output))
            throw new InvalidDataException($"{folder}: the run wrote no output '{output}'; it wrote {string.Join(", ", outputs)}.");

        var keys = new List<string>();
        using (var index = CsvLog.Read(Path.Combine(folder, FeatureOutputFolder.IndexFileName)))
            foreach (var record in index)
            {
                if (record.Count < 2 || long.Parse(record[0], CultureInfo.InvariantCulture) != keys.Count)
                    throw new InvalidDataException($"{folder}/{FeatureOutputFolder.IndexFileName}: line {keys.Count + 2} is not row {keys.Count}.");
                keys.Add(record[1]);
            }
        using var reader = NpyReader.Open(Path.Combine(folder, output + ".npy"));
        if (reader.Rows != keys.Count)
            throw new InvalidDataException($"{reader.Path}: {reader.Rows} rows against {keys.Count} in {FeatureOutputFolder.IndexFileName}.");
        return new ExtractedFeatures(folder, output, keys, reader.RowShape, reader.ReadAll());
    }
}
