using System.CommandLine;

namespace FeatureOnnx.Cli;

/// <summary>Every subcommand, in the order --help lists them. One file per command.</summary>
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
        ProvidersCommand.Create(),
        BenchCommand.Create(),
        E2eWorkerCommand.Create(),
    ];
}
