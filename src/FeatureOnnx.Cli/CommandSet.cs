using System.CommandLine;
using System.CommandLine.Invocation;

namespace FeatureOnnx.Cli;

/// <summary>Every subcommand, in the order --help lists them (one file per command), and the one way to parse and run a command line.</summary>
internal static class CommandSet
{
    public static IEnumerable<Command> All() =>
    [
        ExtractCommand.Create(),
        ExportE2eCommand.Create(),
        InspectCommand.Create(),
        ExposeCommand.Create(),
        ConvertCommand.Create(),
        PcaCommand.Create(),
        PostprocessCommand.Create(),
        MergeCommand.Create(),
        RetrievalCommand.Create(),
        ProvidersCommand.Create(),
        BenchCommand.Create(),
        E2eWorkerCommand.Create(),
    ];

    public static RootCommand Root()
    {
        var root = new RootCommand(
            "featureonnx: image feature vectors from pretrained CNN backbones on ONNX Runtime, with torchvision-exact preprocessing.\n" +
            "Start with: featureonnx extract samples/ -o out/   (built-in ImageNet ResNet18, pooled 512-d vectors)");
        foreach (var command in All())
            root.Subcommands.Add(command);
        return root;
    }

    /// <summary>Parses <paramref name="args"/> as <see cref="InvokeAsync"/> does.</summary>
    // '@LIST.txt' is an input (a list file read by FolderSource), not a response file for System.CommandLine to expand.
    public static ParseResult Parse(string[] args) => Root().Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });

    /// <summary>
    /// Runs <paramref name="args"/>; a command line with mistakes (<see cref="UsageErrors"/>) prints one line per
    /// mistake and a pointer to --help on stderr and returns <see cref="CliErrors.Failed"/> without running anything.
    /// </summary>
    public static Task<int> InvokeAsync(string[] args, InvocationConfiguration? configuration = null)
    {
        configuration ??= new InvocationConfiguration();
        var parse = Parse(args.Length == 0 ? ["--help"] : args);
        var runsCommand = parse.Action is ParseErrorAction || ReferenceEquals(parse.Action, parse.CommandResult.Command.Action);
        var errors = runsCommand ? UsageErrors.Find(parse, args) : [];
        if (errors.Count == 0) return parse.InvokeAsync(configuration);
        foreach (var error in errors) configuration.Error.WriteLine($"error: {error}");
        var names = new List<string>();
        for (var result = parse.CommandResult; result.Command is not RootCommand; result = (System.CommandLine.Parsing.CommandResult)result.Parent!)
            names.Insert(0, result.Command.Name);
        var path = string.Join(' ', names);
        configuration.Error.WriteLine($"see 'featureonnx {(path.Length > 0 ? path + " " : "")}--help'");
        return Task.FromResult(CliErrors.Failed);
    }
}
