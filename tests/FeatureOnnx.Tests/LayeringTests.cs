using System.Text.RegularExpressions;

namespace FeatureOnnx.Tests;

/// <summary>
/// The house of ../shared/ARCHITECTURE.md, read from the sources: no stage folder imports another; Models, Formats
/// and Cuda lie below the stages; Pipeline and Benchmarking above them; nothing in the library imports the CLI.
/// A reference is a <c>using FeatureOnnx.X</c>, a fully qualified <c>FeatureOnnx.X.Type</c>, or a partly qualified
/// <c>X.Type</c> that names a type of namespace FeatureOnnx.X (checked against the assembly, so a property that happens
/// to be called <c>Runtime</c> is not one); comments and string literals are left out.
/// </summary>
[Trait("Category", TestCategory.Fast)]
public sealed partial class LayeringTests
{
    private static readonly string[] Stages = ["Sources", "Preprocessing", "Runtime", "PostProcessing", "Sinks"];

    /// <summary>What each folder may reference besides itself.</summary>
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["Formats"] = [],
        ["Cuda"] = [],
        ["Models"] = ["Formats", "Cuda"],
        ["Sources"] = ["Models", "Formats", "Cuda"],
        ["Preprocessing"] = ["Models", "Formats", "Cuda"],
        ["Runtime"] = ["Models", "Formats", "Cuda"],
        ["PostProcessing"] = ["Models", "Formats", "Cuda"],
        ["Sinks"] = ["Models", "Formats", "Cuda"],
        ["Pipeline"] = ["Models", "Formats", "Cuda", .. Stages], // beside Benchmarking, which may run a pipeline; never the other way
        ["Benchmarking"] = ["Models", "Formats", "Cuda", .. Stages, "Pipeline"],
    };

    [Fact]
    public void Every_library_folder_has_a_place_in_the_house()
    {
        var folders = Directory.GetDirectories(LibraryRoot()).Select(Path.GetFileName).Where(f => f is not ("bin" or "obj" or "native" or "buildTransitive")).Order();
        Assert.All(folders, f => Assert.True(Allowed.ContainsKey(f!), $"src/FeatureOnnx/{f}/ is in no layer of the house; add it to {nameof(Allowed)} with what it may use."));
    }

    [Fact]
    public void No_folder_references_one_it_may_not()
    {
        var violations = Violations(LibraryRoot());
        Assert.True(violations.Count == 0, $"{violations.Count} references against the house:\n" + string.Join("\n", violations));
    }

    [Fact]
    public void The_checker_sees_each_kind_of_reference()
    {
        // A hand-made Runtime file with the three spellings, a comment and a string that must not count.
        const string source = """
            using FeatureOnnx.Sinks;
            namespace FeatureOnnx.Runtime;
            // FeatureOnnx.Sources.FolderSource in a comment is no reference
            internal sealed class X
            {
                string s = "FeatureOnnx.Pipeline.OutputFolder";
                object a = new FeatureOnnx.Preprocessing.ImageDecoder();
                object b = Cuda.CudaDriver.Probe(); object c = Preprocessing.CenterCrop.Box(1, 1, 1, 1);
                int Runtime.Count => 0;
            }
            """;
        var found = References("Runtime", source).Select(r => r.Target).Order().ToArray();
        Assert.Equal(["Cuda", "Preprocessing", "Preprocessing", "Sinks"], found);
    }

    private static List<string> Violations(string root)
    {
        var result = new List<string>();
        foreach (var folder in Allowed.Keys.Where(f => Directory.Exists(Path.Combine(root, f))))
            foreach (var file in Directory.EnumerateFiles(Path.Combine(root, folder), "*.cs", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                foreach (var (target, line) in References(folder, File.ReadAllText(file)))
                    if (target != folder && (target == "Cli" || !Allowed[folder].Contains(target)))
                        result.Add($"{Path.GetRelativePath(root, file)}:{line}: {folder} -> {target}");
        return result;
    }

    /// <summary>The library folders <paramref name="source"/> refers to, with the line of each reference.</summary>
    private static IEnumerable<(string Target, int Line)> References(string folder, string source)
    {
        var code = StripCommentsAndStrings(source);
        foreach (Match m in QualifiedName().Matches(code))
        {
            if (!m.Groups["ns"].Success) continue; // a namespace declaration
            var target = m.Groups["ns"].Value;
            // A partly qualified name counts only where FeatureOnnx.<ns>.<type> is a type of the library.
            var type = $"{target}.{m.Groups["type"].Value}";
            if (m.Groups["partial"].Success && LibraryAssembly.GetType("FeatureOnnx." + type) is null && !KnownTypeNames.Contains(type))
                continue;
            yield return (target, code[..m.Index].Count(c => c == '\n') + 1);
        }
    }

    private static readonly System.Reflection.Assembly LibraryAssembly = typeof(FeatureOnnx.Models.ModelManifest).Assembly;

    // Types the hand-made source of The_checker_sees_each_kind_of_reference names, whatever the assembly holds today.
    private static readonly HashSet<string> KnownTypeNames = ["Cuda.CudaDriver", "Preprocessing.CenterCrop"];

    /// <summary>Blanks comments, string and character literals (keeping line breaks), so that names inside them are not read.</summary>
    private static string StripCommentsAndStrings(string source) =>
        CommentOrLiteral().Replace(source, m => new string(m.Value.Select(c => c == '\n' ? '\n' : ' ').ToArray()));

    private static string LibraryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "src", "FeatureOnnx");
            if (File.Exists(Path.Combine(candidate, "FeatureOnnx.csproj"))) return candidate;
        }
        throw new DirectoryNotFoundException($"src/FeatureOnnx not found above {AppContext.BaseDirectory}; run the tests from the repository's build output.");
    }

    [GeneratedRegex("""
        \bnamespace\s+[\w.]+
        | \busing\s+(?:static\s+)?(?:\w+\s*=\s*)?FeatureOnnx\.(?<ns>\w+)
        | \bFeatureOnnx\.(?<ns>[A-Z]\w*)\.(?<type>[A-Z]\w*)
        | (?<![\w.])(?<partial>(?<ns>Sources|Preprocessing|Runtime|PostProcessing|Sinks|Pipeline|Benchmarking|Cli|Models|Formats|Cuda))\.(?<type>[A-Z]\w*)
        """, RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex QualifiedName();

    [GeneratedRegex("""//[^\n]*|/\*.*?\*/|@"(?:[^"]|"")*"|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])'""", RegexOptions.Singleline)]
    private static partial Regex CommentOrLiteral();
}
