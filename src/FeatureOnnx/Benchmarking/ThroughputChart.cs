using System.Globalization;
using System.Security;
using System.Text;

namespace FeatureOnnx.Benchmarking;

/// <summary>
/// report.svg: throughput (images/s) against batch size, one polyline per provider and input path that ran, batch size on a log2
/// axis. Plain SVG 1.1 written by hand: it opens in any browser and renders on GitHub.
/// </summary>
internal static class ThroughputChart
{
    private const double Width = 760, Height = 460, Left = 80, Right = 190, Top = 56, Bottom = 64;
    private static readonly string[] Palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
    private static readonly string[] Dashes = ["", "7 4", "2 3", "10 3 2 3"]; // per input path: run solid, bound dashed, uint8 dotted, device dash-dot
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>The chart as an SVG document.</summary>
    public static string Render(BenchmarkReport report)
    {
        var paths = report.InputPaths.Concat(report.Results.Select(r => r.InputPath)).Distinct().ToList();
        var precisions = report.Precisions.Concat(report.Results.Select(r => r.Precision)).Distinct().ToList();
        var series = report.Providers
            .SelectMany(p => precisions.SelectMany(precision => paths.Select(path => (Provider: p, Precision: precision, Path: path,
                Points: report.Results.Where(r => r.Provider == p && r.Precision == precision && r.InputPath == path).OrderBy(r => r.BatchSize).ToList()))))
            .Where(s => s.Points.Count > 0)
            .ToList();
        var batches = report.Results.Select(r => r.BatchSize).Concat(report.BatchSizes).Distinct().Order().ToList();
        var xMin = Math.Log2(batches.Count > 0 ? batches[0] : 1);
        var xMax = Math.Log2(batches.Count > 0 ? batches[^1] : 1);
        // A quarter octave of room on each side keeps the end points off the axes.
        if (xMax - xMin < 1e-9) { xMin -= 1; xMax += 1; }
        else { xMin -= 0.25; xMax += 0.25; }
        var yTop = report.Results.Count > 0 ? report.Results.Max(r => r.ImagesPerSecond) : 1;
        var yStep = NiceStep(yTop / 5);
        var yMax = Math.Max(yStep, Math.Ceiling(yTop * 1.05 / yStep) * yStep);
        var plotW = Width - Left - Right;
        var plotH = Height - Top - Bottom;
        double X(int batch) => Left + (Math.Log2(batch) - xMin) / (xMax - xMin) * plotW;
        double Y(double v) => Top + plotH - v / yMax * plotH;

        var svg = new StringBuilder();
        void Line(string text) => svg.Append(text).Append('\n');
        Line("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        Line($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{N(Width)}\" height=\"{N(Height)}\" viewBox=\"0 0 {N(Width)} {N(Height)}\" font-family=\"sans-serif\" font-size=\"12\">");
        Line($"<rect x=\"0\" y=\"0\" width=\"{N(Width)}\" height=\"{N(Height)}\" fill=\"#ffffff\"/>");
        Line($"<text x=\"{N(Left)}\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{Escape($"{report.Model}: throughput by batch size")}</text>");
        Line($"<text x=\"{N(Left)}\" y=\"42\" fill=\"#555555\">{Escape($"outputs {string.Join(", ", report.Outputs)}; {report.Iterations} timed runs; ONNX Runtime {report.OrtVersion}" + (report.RandomInputs ? "; random inputs" : ""))}</text>");

        // Grid and y ticks.
        for (var k = 0; k * yStep <= yMax + yStep / 2; k++)
        {
            var v = k * yStep;
            var y = Y(v);
            Line($"<line x1=\"{N(Left)}\" y1=\"{N(y)}\" x2=\"{N(Left + plotW)}\" y2=\"{N(y)}\" stroke=\"#e0e0e0\"/>");
            Line($"<text x=\"{N(Left - 8)}\" y=\"{N(y + 4)}\" text-anchor=\"end\">{Escape(Count(v))}</text>");
        }
        // x ticks at every batch size measured.
        foreach (var b in batches)
        {
            var x = X(b);
            Line($"<line x1=\"{N(x)}\" y1=\"{N(Top)}\" x2=\"{N(x)}\" y2=\"{N(Top + plotH)}\" stroke=\"#f0f0f0\"/>");
            Line($"<line x1=\"{N(x)}\" y1=\"{N(Top + plotH)}\" x2=\"{N(x)}\" y2=\"{N(Top + plotH + 5)}\" stroke=\"#000000\"/>");
            Line($"<text x=\"{N(x)}\" y=\"{N(Top + plotH + 19)}\" text-anchor=\"middle\">{b.ToString(Invariant)}</text>");
        }
        Line($"<line x1=\"{N(Left)}\" y1=\"{N(Top + plotH)}\" x2=\"{N(Left + plotW)}\" y2=\"{N(Top + plotH)}\" stroke=\"#000000\"/>");
        Line($"<line x1=\"{N(Left)}\" y1=\"{N(Top)}\" x2=\"{N(Left)}\" y2=\"{N(Top + plotH)}\" stroke=\"#000000\"/>");
        Line($"<text x=\"{N(Left + plotW / 2)}\" y=\"{N(Height - 18)}\" text-anchor=\"middle\">batch size (images per run, log2 scale)</text>");
        Line($"<text x=\"18\" y=\"{N(Top + plotH / 2)}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {N(Top + plotH / 2)})\">throughput (images/s)</text>");

        // One polyline per provider and input path, points marked, legend on the right.
        var legendX = Left + plotW + 20;
        for (var i = 0; i < series.Count; i++)
        {
            var (provider, precision, path, points) = series[i];
            var label = precisions.Count > 1 ? $"{provider} {precision} {path}" : $"{provider} {path}";
            // Colour says the provider (and precision), the dash pattern the input path.
            var colour = Palette[(Math.Max(0, report.Providers.ToList().IndexOf(provider)) * precisions.Count + precisions.IndexOf(precision)) % Palette.Length];
            var dash = Dashes[paths.IndexOf(path) % Dashes.Length];
            var dashAttribute = dash.Length == 0 ? "" : $" stroke-dasharray=\"{dash}\"";
            var coordinates = string.Join(" ", points.Select(p => $"{N(X(p.BatchSize))},{N(Y(p.ImagesPerSecond))}"));
            Line($"<polyline data-provider=\"{Escape(provider)}\" data-path=\"{Escape(path)}\" data-precision=\"{Escape(precision)}\" points=\"{coordinates}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dashAttribute}/>");
            foreach (var p in points)
                Line($"<circle cx=\"{N(X(p.BatchSize))}\" cy=\"{N(Y(p.ImagesPerSecond))}\" r=\"3.5\" fill=\"{colour}\"><title>{Escape($"{label}, batch {p.BatchSize}: {Count(p.ImagesPerSecond)} img/s, p50 {p.LatencyMs.P50.ToString("0.##", Invariant)} ms")}</title></circle>");
            var ly = Top + 10 + i * 22;
            Line($"<line x1=\"{N(legendX)}\" y1=\"{N(ly)}\" x2=\"{N(legendX + 24)}\" y2=\"{N(ly)}\" stroke=\"{colour}\" stroke-width=\"2\"{dashAttribute}/>");
            Line($"<text x=\"{N(legendX + 30)}\" y=\"{N(ly + 4)}\">{Escape(label)}</text>");
        }
        var noteY = Top + 10 + series.Count * 22 + 8;
        foreach (var skipped in report.Skipped.Where(s => s.BatchSize is null))
        {
            Line($"<text x=\"{N(legendX)}\" y=\"{N(noteY)}\" fill=\"#777777\">{Escape($"{skipped.Provider}: skipped")}<title>{Escape(skipped.Reason)}</title></text>");
            noteY += 18;
        }
        Line("</svg>");
        return svg.ToString();
    }

    /// <summary>1, 2 or 5 times a power of ten, at least <paramref name="rough"/>.</summary>
    private static double NiceStep(double rough)
    {
        if (rough <= 0 || double.IsNaN(rough) || double.IsInfinity(rough)) return 1;
        var power = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        var fraction = rough / power;
        return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
    }

    private static string N(double v) => v.ToString("0.##", Invariant);

    private static string Count(double v) => v.ToString(v >= 100 || v == 0 ? "#,0" : "0.#", Invariant);

    private static string Escape(string text) => SecurityElement.Escape(text);
}
