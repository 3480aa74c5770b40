using System.CommandLine;
using System.Globalization;
using FeatureOnnx.PostProcessing;

namespace FeatureOnnx.Cli;

/// <summary><c>featureonnx pca fit|transform</c>: fit a PCA on a features file, apply a fitted one.</summary>
internal static class PcaCommand
{
    public static Command Create() => new("pca", "Fit a PCA on extracted features (streamed from disk, float64, matching scikit-learn's PCA) or apply a fitted one.")
    {
        CreateFit(),
        CreateTransform(),
    };

    private static Command CreateFit()
    {
        var features = new Argument<string>("features") { Description = "Float32 .npy of shape [N, D] (e.g. extract's pooled.npy)." };
        var components = new Option<int?>("--components", "-k") { Description = "Keep K components (at most min(N, D))." };
        var variance = new Option<double?>("--variance") { Description = "Keep the fewest components explaining more than this share of the variance, e.g. 0.95 (scikit-learn's float n_components)." };
        var whiten = new Option<bool>("--whiten") { Description = "Scale outputs to unit variance (PCA(whiten=True)): divide by sqrt(explained_variance)." };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the model (.npz: numpy.load reads it; see docs/formats.md).", Required = true };
        var name = new Option<string?>("--name") { Description = "Feature name stored in the model. Default: the features file's name." };
        var signs = new Option<string>("--signs")
        {
            Description = "Component sign rule: 'score' (the sample with the largest |score| scores positive: scikit-learn <= 1.4, Debian 12; one extra pass) or 'loading' (largest |loading| positive: scikit-learn >= 1.5).",
            DefaultValueFactory = _ => "score",
        };
        signs.AcceptOnlyFromAmong("score", "loading");
        var backend = new Option<string>("--backend")
        {
            Description = "Numerics: auto (OpenBLAS when libopenblas.so.0 is installed, else managed), managed (SIMD covariance; MathNet eigendecomposition up to D=512, a SIMD Householder solver above), openblas.",
            DefaultValueFactory = _ => "auto",
        };
        backend.AcceptOnlyFromAmong("auto", "managed", "openblas");
        var chunkRows = new Option<int>("--chunk-rows") { Description = "Rows read per chunk (0: about 32 MiB of float64).", DefaultValueFactory = _ => 0 };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "No progress output." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace the model file if it exists." };
        var command = new Command("fit",
            "Fit a PCA on a float32 features file. Mean and covariance are accumulated in float64 over chunks read from disk, so the file may be larger than memory " +
            "(memory: one D x D float64 matrix plus a few 32 MiB chunks). Results match scikit-learn's PCA(svd_solver='full').")
        {
            features, components, variance, whiten, output, name, signs, backend, chunkRows, quiet, overwrite,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(components) is null == result.GetValue(variance) is null)
                result.AddError("give exactly one of -k K and --variance RATIO.");
        });
        command.SetAction((parse, cancellation) => Task.FromResult(CliErrors.Guard(() =>
        {
            var input = parse.GetValue(features)!;
            var target = parse.GetValue(output)!;
            CliErrors.RefuseExisting(target, parse.GetValue(overwrite));
            var options = new PcaFitOptions
            {
                Components = parse.GetValue(components),
                VarianceRatio = parse.GetValue(variance),
                Whiten = parse.GetValue(whiten),
                FeatureName = parse.GetValue(name) ?? Path.GetFileNameWithoutExtension(input),
                SignConvention = parse.GetValue(signs) == "loading" ? PcaSignConvention.LargestLoadingPositive : PcaSignConvention.LargestScorePositive,
                Backend = parse.GetValue(backend) switch { "managed" => PcaBackend.Managed, "openblas" => PcaBackend.OpenBlas, _ => PcaBackend.Auto },
                ChunkRows = parse.GetValue(chunkRows),
            };
            var fitter = new PcaFitter(options);
            var progress = new FitProgress(parse.GetValue(quiet));
            var result = fitter.Fit(input, progress, cancellation);
            progress.Finish();
            result.Model.Save(target);
            var info = result.Info;
            Console.WriteLine($"wrote {target}: {result.Model}");
            var check = double.IsNaN(info.VarianceCheck) ? "" : string.Create(CultureInfo.InvariantCulture, $"; self-check {info.VarianceCheck:0.0E+0}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"fit {info.Rows} x {info.Dimension} in {info.TotalSeconds:0.00}s: covariance {info.CovarianceSeconds:0.00}s [{info.CovarianceBackend}], " +
                $"eigen {info.EigenSeconds:0.00}s [{info.EigenBackend}], signs {info.SignSeconds:0.00}s; {info.Passes} pass(es), {info.ChunkRows} rows per chunk{check}"));
            if (info.OpenBlasStatus.Length > 0 && options.Backend == PcaBackend.Auto) Console.Error.WriteLine($"note: managed numerics: {info.OpenBlasStatus}");
            return CliErrors.Ok;
        })));
        return command;
    }

    private static Command CreateTransform()
    {
        var model = new Argument<string>("model") { Description = "A model from 'featureonnx pca fit' (.npz)." };
        var features = new Argument<string>("features") { Description = "Float32 .npy of shape [N, D] with the model's D." };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the projected rows (float32 .npy [N, K]).", Required = true };
        var l2 = new Option<bool>("--l2") { Description = "Scale each projected row to unit L2 norm." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace the output file if it exists." };
        var command = new Command("transform", "Project features with a fitted PCA: (x - mean) components^T, divided by sqrt(explained_variance) when it was fitted with --whiten.")
        {
            model, features, output, l2, overwrite,
        };
        command.SetAction((parse, cancellation) => Task.FromResult(CliErrors.Guard(() =>
        {
            var target = parse.GetValue(output)!;
            CliErrors.RefuseExisting(target, parse.GetValue(overwrite));
            var pca = PcaModel.Load(parse.GetValue(model)!);
            var options = new PostProcessOptions { Pca = pca, L2 = parse.GetValue(l2) };
            var rows = FeaturePostProcessor.ProcessFile(options, parse.GetValue(features)!, target, cancellation: cancellation);
            Console.WriteLine($"wrote {target}: [{rows},{pca.Components}] with {pca}");
            return CliErrors.Ok;
        })));
        return command;
    }

    /// <summary>A line on stderr every few seconds while a long fit runs.</summary>
    private sealed class FitProgress(bool quiet) : IProgress<PcaFitProgress>
    {
        private static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);
        private TimeSpan _last = TimeSpan.Zero;
        private bool _any;

        public void Report(PcaFitProgress p)
        {
            if (quiet || p.Elapsed - _last < Interval) return;
            _last = p.Elapsed;
            _any = true;
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"pca fit: {p.Stage} {p.RowsDone}/{p.RowsTotal} rows ({(p.RowsTotal > 0 ? (double)p.RowsDone / p.RowsTotal : 0):P0}), {p.Elapsed.TotalSeconds:0}s"));
        }

        public void Finish()
        {
            if (_any && !quiet) Console.Error.WriteLine("pca fit: done");
        }
    }
}
