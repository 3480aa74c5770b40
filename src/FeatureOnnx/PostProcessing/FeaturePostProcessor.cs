using System.Buffers;
using FeatureOnnx.Formats;

namespace FeatureOnnx.PostProcessing;

/// <summary>What <see cref="FeaturePostProcessor"/> does to each row, in this order: pool, PCA, L2.</summary>
public sealed record PostProcessOptions
{
    /// <summary>Pooling or flattening of spatial maps. Default <see cref="PoolingMode.None"/>.</summary>
    public PoolingMode Pooling { get; init; } = PoolingMode.None;

    /// <summary>A fitted PCA applied after pooling. Default null (none).</summary>
    public PcaModel? Pca { get; init; }

    /// <summary>Scale each output row to unit L2 norm, last. Default false.</summary>
    public bool L2 { get; init; }

    /// <summary>True when nothing would change the rows or their shape (flatten changes the shape only).</summary>
    public bool IsIdentity => Pooling == PoolingMode.None && Pca is null && !L2;
}

/// <summary>The post-processing a run applied to every output, as run.json records it.</summary>
public sealed record PostProcessSummary
{
    /// <summary>none, avg, max or flatten.</summary>
    public required string Pool { get; init; }
    /// <summary>The PCA applied after pooling; null: none.</summary>
    public PcaSummary? Pca { get; init; }
    /// <summary>Rows scaled to unit L2 norm, last.</summary>
    public bool L2 { get; init; }

    /// <summary>What <paramref name="options"/> do.</summary>
    public static PostProcessSummary Of(PostProcessOptions options) => new()
    {
        Pool = options.Pooling switch { PoolingMode.Average => "avg", PoolingMode.Max => "max", PoolingMode.Flatten => "flatten", _ => "none" },
        Pca = options.Pca is { } pca ? new PcaSummary
        {
            Path = pca.SourcePath, Sha256 = pca.SourceSha256, Dimension = pca.Dimension, Components = pca.Components, Whiten = pca.Whiten,
        } : null,
        L2 = options.L2,
    };
}

/// <summary>A PCA a run applied: the file it came from and its shape.</summary>
public sealed record PcaSummary
{
    /// <summary>Absolute path of the .npz it was loaded from; null for a model built in memory.</summary>
    public string? Path { get; init; }
    /// <summary>SHA-256 of that file's bytes (lower-case hex), so a later run can tell whether the PCA changed.</summary>
    public string? Sha256 { get; init; }
    /// <summary>Floats per input row.</summary>
    public int Dimension { get; init; }
    /// <summary>Floats per output row.</summary>
    public int Components { get; init; }
    /// <summary>Whether outputs were whitened.</summary>
    public bool Whiten { get; init; }
}

/// <summary>
/// Pool -> PCA -> L2 on batches of rows: the per-batch step that <c>extract</c> runs before writing, and the whole of
/// <c>featureonnx postprocess</c> / <c>pca transform</c> over a file (<see cref="ProcessFile"/>).
/// </summary>
public sealed class FeaturePostProcessor
{
    /// <summary>Checks that the steps fit rows of <paramref name="inputRowShape"/>.</summary>
    /// <exception cref="ArgumentException">The pooled row length differs from the PCA's input dimension.</exception>
    public FeaturePostProcessor(PostProcessOptions options, IReadOnlyList<long> inputRowShape, string nameForErrors = "input")
    {
        Options = options;
        InputRowShape = [.. inputRowShape];
        InputRowLength = (int)InputRowShape.Aggregate(1L, (a, b) => a * b);
        PooledRowShape = SpatialPooling.OutputRowShape(InputRowShape, options.Pooling);
        PooledRowLength = (int)PooledRowShape.Aggregate(1L, (a, b) => a * b);
        if (options.Pca is { } pca && pca.Dimension != PooledRowLength)
        {
            var hint = InputRowShape.Length > 1 && options.Pooling == PoolingMode.None ? " Pool the maps first (PostProcessOptions.Pooling = Average) or fit the PCA on what you feed it." : "";
            throw new ArgumentException($"{nameForErrors}: rows of [{string.Join(",", PooledRowShape)}] ({PooledRowLength} floats) but the PCA expects {pca.Dimension} features ({pca}).{hint}");
        }
        OutputRowShape = options.Pca is { } p ? [p.Components] : PooledRowShape;
        OutputRowLength = (int)OutputRowShape.Aggregate(1L, (a, b) => a * b);
    }

    /// <summary>The steps.</summary>
    public PostProcessOptions Options { get; }

    /// <summary>Shape of an input row.</summary>
    public long[] InputRowShape { get; }

    /// <summary>Floats per input row.</summary>
    public int InputRowLength { get; }

    /// <summary>Shape of a row after pooling.</summary>
    public long[] PooledRowShape { get; }

    /// <summary>Floats per row after pooling.</summary>
    public int PooledRowLength { get; }

    /// <summary>Shape of an output row.</summary>
    public long[] OutputRowShape { get; }

    /// <summary>Floats per output row.</summary>
    public int OutputRowLength { get; }

    /// <summary>
    /// Processes whole rows: <paramref name="input"/> holds n rows of <see cref="InputRowLength"/> floats,
    /// <paramref name="output"/> receives n rows of <see cref="OutputRowLength"/>. Safe to call from several threads.
    /// </summary>
    public void Process(ReadOnlySpan<float> input, Span<float> output)
    {
        if (input.Length % InputRowLength != 0) throw new ArgumentException($"{input.Length} floats is not a whole number of rows of [{string.Join(",", InputRowShape)}]");
        var rows = input.Length / InputRowLength;
        var result = output[..(rows * OutputRowLength)];
        if (Options.Pca is { } pca)
        {
            if (Options.Pooling is PoolingMode.None or PoolingMode.Flatten) pca.Transform(input, result);
            else
            {
                var pooled = ArrayPool<float>.Shared.Rent(rows * PooledRowLength);
                try
                {
                    SpatialPooling.Apply(input, InputRowShape, Options.Pooling, pooled);
                    pca.Transform(pooled.AsSpan(0, rows * PooledRowLength), result);
                }
                finally
                {
                    ArrayPool<float>.Shared.Return(pooled);
                }
            }
        }
        else SpatialPooling.Apply(input, InputRowShape, Options.Pooling, result);
        if (Options.L2) L2Normalize.Rows(result, OutputRowLength);
    }

    /// <summary>
    /// Streams <paramref name="inputPath"/> (float32 .npy) through <see cref="Process"/> into <paramref name="outputPath"/>
    /// (written atomically by <see cref="NpyWriter"/>); returns the rows written. <paramref name="progress"/> gets rows done.
    /// </summary>
    public static long ProcessFile(PostProcessOptions options, string inputPath, string outputPath, IProgress<(long Done, long Total)>? progress = null,
        int chunkRows = 0, CancellationToken cancellation = default)
    {
        using var reader = NpyReader.Open(inputPath);
        var processor = new FeaturePostProcessor(options, reader.RowShape, inputPath);
        if (Path.GetFullPath(inputPath) == Path.GetFullPath(outputPath)) throw new ArgumentException($"{outputPath}: the output would replace its own input; choose another -o.");
        var rowsPerChunk = chunkRows > 0 ? chunkRows : Math.Max(64, (16 << 20) / (4 * Math.Max(processor.InputRowLength, processor.OutputRowLength)));
        var input = new float[checked(rowsPerChunk * processor.InputRowLength)];
        var output = new float[checked(rowsPerChunk * processor.OutputRowLength)];
        using var writer = new NpyWriter(outputPath, processor.OutputRowShape);
        const int rowsPerTask = 256;
        int read;
        while ((read = reader.ReadRows(input)) > 0)
        {
            cancellation.ThrowIfCancellationRequested();
            var tasks = (read + rowsPerTask - 1) / rowsPerTask;
            Parallel.For(0, tasks, t =>
            {
                var r0 = t * rowsPerTask;
                var m = Math.Min(rowsPerTask, read - r0);
                processor.Process(input.AsSpan(r0 * processor.InputRowLength, m * processor.InputRowLength),
                    output.AsSpan(r0 * processor.OutputRowLength, m * processor.OutputRowLength));
            });
            writer.Append(output.AsSpan(0, read * processor.OutputRowLength));
            progress?.Report((reader.Position, reader.Rows));
        }
        writer.Complete();
        return writer.Rows;
    }
}
