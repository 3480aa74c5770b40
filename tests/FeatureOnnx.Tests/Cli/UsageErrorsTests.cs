using System.CommandLine;
using FeatureOnnx.Cli;

namespace FeatureOnnx.Tests.Cli;

/// <summary>Command lines with mistakes are refused before anything runs: exit 1, one line per mistake on stderr, nothing written.</summary>
[Trait("Category", TestCategory.Fast)]
public sealed class UsageErrorsTests
{
    private static (int Code, string Out, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = CommandSet.InvokeAsync(args, new InvocationConfiguration { Output = output, Error = error }).GetAwaiter().GetResult();
        return (code, output.ToString(), error.ToString());
    }

    private static string Samples => Fixtures.PathOf("photos");

    [Fact]
    public void An_unknown_option_is_an_error_naming_the_closest_option_not_an_input_path()
    {
        using var tmp = new Fixtures.TempDir();
        var (code, _, error) = Run("extract", Samples, "-o", tmp.File("out"), "--layer", "layer3", "-q");
        Assert.Equal(1, code);
        Assert.StartsWith("error: unknown option '--layer'; did you mean --layers?", error);
        Assert.EndsWith("see 'featureonnx extract --help'\n", error);
        Assert.False(Directory.Exists(tmp.File("out")));

        (code, _, error) = Run("extract", Samples, "-o", tmp.File("out"), "--frobnicate");
        Assert.Equal(1, code);
        Assert.StartsWith("error: unknown option '--frobnicate' (a file named '--frobnicate' is passed after '--')\n", error);
        Assert.False(Directory.Exists(tmp.File("out")));
    }

    [Theory]
    [InlineData("providers --frobnicate", "error: unknown option '--frobnicate'\n", "providers")]
    [InlineData("pca fit F.npy -k 2 -o P.npz --whitn", "error: unknown option '--whitn'; did you mean --whiten?", "pca fit")]
    [InlineData("pca transform P.npz F.npy -o O.npy --l3", "error: unknown option '--l3'; did you mean --l2?", "pca transform")]
    [InlineData("postprocess F.npy --pool avg --pcaa P.npz -o O.npy", "error: unknown option '--pcaa'; did you mean --pca?", "postprocess")]
    [InlineData("merge A B -o M --overwite", "error: unknown option '--overwite'", "merge")]
    [InlineData("bench --provider cpu -o R", "error: unknown option '--provider'; did you mean --providers?", "bench")]
    [InlineData("export-e2e -o E.onnx --batchd", "error: unknown option '--batchd'; did you mean --batched?\n", "export-e2e")]
    [InlineData("inspect resnet18 --al", "error: unknown option '--al'; did you mean --all?", "inspect")]
    [InlineData("expose M.onnx --dynamic-bach -o O.onnx", "error: unknown option '--dynamic-bach'; did you mean --dynamic-batch?", "expose")]
    public void Every_command_refuses_unknown_options(string line, string firstLine, string command)
    {
        var (code, output, error) = Run(line.Split(' '));
        Assert.Equal(1, code);
        Assert.StartsWith(firstLine, error);
        Assert.EndsWith($"see 'featureonnx {command} --help'\n", error);
        Assert.Equal("", output);
    }

    [Fact]
    public void A_long_option_with_one_dash_is_not_a_short_option_with_a_glued_value()
    {
        using var tmp = new Fixtures.TempDir();
        var (code, _, error) = Run("extract", Samples, "-o", tmp.File("out"), "-layers", "layer3");
        Assert.Equal(1, code);
        Assert.StartsWith("error: unknown option '-layers'; did you mean --layers? (long options take two dashes; -l takes its value after a space: -l VALUE)\n", error);
        Assert.False(Directory.Exists(tmp.File("out")));
        // One dash and no short option of that letter: still named.
        (code, _, error) = Run("extract", Samples, "-o", tmp.File("out"), "-overwrite");
        Assert.Equal(1, code);
        Assert.Contains("unknown option '-overwrite'; did you mean --overwrite?", error);
    }

    [Fact]
    public void A_short_option_keeps_its_glued_value_and_a_folder_named_like_an_option_is_still_a_value()
    {
        var parse = CommandSet.Parse(["extract", Samples, "-b8", "-o", "-layers"]);
        Assert.Empty(UsageErrors.Find(parse, ["extract", Samples, "-b8", "-o", "-layers"]));
        Assert.Equal("-layers", parse.GetValue<string>("--output"));
        Assert.Equal(8, parse.GetValue<int>("--batch"));
    }

    [Fact]
    public void A_file_named_like_an_option_is_passed_after_double_dash()
    {
        using var tmp = new Fixtures.TempDir();
        File.Copy(Fixtures.PathOf("photos", "skimage_coffee.png"), tmp.File("-x.png"));
        var args = new[] { "extract", "-o", tmp.File("out"), "-q", "--", "-x.png" };
        var parse = CommandSet.Parse(args);
        Assert.Empty(UsageErrors.Find(parse, args));
        Assert.Equal(["-x.png"], parse.GetValue<string[]>("inputs")!);
        // Before '--' the same name is an unknown option.
        args = ["extract", "-o", tmp.File("out"), "-x.png"];
        Assert.Equal(["unknown option '-x.png' (a file named '-x.png' is passed after '--')"], UsageErrors.Find(CommandSet.Parse(args), args));
    }

    [Fact]
    public void A_missing_required_option_is_one_line_first_not_the_help_text()
    {
        var (code, output, error) = Run("extract", Samples);
        Assert.Equal(1, code);
        Assert.Equal("error: Option '--output' is required.\nsee 'featureonnx extract --help'\n", error);
        Assert.Equal("", output);
        (code, _, error) = Run("pca");
        Assert.Equal(1, code);
        Assert.Equal("error: Required command was not provided.\nsee 'featureonnx pca --help'\n", error);
    }

    [Fact]
    public void Help_still_wins_over_a_missing_option_and_no_arguments_show_the_help()
    {
        var (code, output, error) = Run("extract", "--help");
        Assert.Equal(0, code);
        Assert.Contains("--layers", output);
        Assert.Equal("", error);
        (code, output, _) = Run();
        Assert.Equal(0, code);
        Assert.Contains("extract", output);
    }

    [Fact]
    public void At_list_files_are_inputs_not_response_files()
    {
        var args = new[] { "extract", "@lists/inputs.txt", "-o", "out" };
        var parse = CommandSet.Parse(args);
        Assert.Equal(["@lists/inputs.txt"], parse.GetValue<string[]>("inputs")!);
        Assert.Empty(parse.Errors); // no "response file not found"
    }

    [Theory]
    [InlineData("--layer", "--layers")]
    [InlineData("--over", "--overwrite")]
    [InlineData("--batsh", "--batch")]
    [InlineData("--outptu", "--output")]
    [InlineData("--frobnicate", null)]
    [InlineData("-x", null)]
    public void Closest_option_is_a_prefix_or_within_three_edits(string token, string? expected)
    {
        var extract = CommandSet.Root().Subcommands.Single(c => c.Name == "extract");
        Assert.Equal(expected, UsageErrors.ClosestOption(token, extract.Options));
    }
}
