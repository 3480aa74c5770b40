using System.CommandLine;
using System.CommandLine.Parsing;
using FeatureOnnx.Models;

namespace FeatureOnnx.Cli;

/// <summary>
/// The mistakes in a command line, one line each: System.CommandLine's parse errors, plus the ones it lets through,
/// an unknown option taken as an input path (<c>--frobnicate</c>) and a long option typed with one dash
/// (<c>-layers</c>, which it reads as <c>-l ayers</c>). An unknown option is named with the closest valid one.
/// </summary>
internal static class UsageErrors
{
    private const int MaxSuggestionDistance = 3;

    /// <summary>Every mistake of <paramref name="parse"/> (made from <paramref name="args"/>); empty when the command may run.</summary>
    public static IReadOnlyList<string> Find(ParseResult parse, IReadOnlyList<string> args)
    {
        var command = parse.CommandResult.Command;
        var options = OptionsOf(parse.CommandResult).ToList();
        var errors = new List<string>();
        errors.AddRange(GluedLongOptions(args, options));

        // System.CommandLine gives every token that no option matches to the command's arguments, so an unknown
        // option would become an input path; tokens after "--" are paths whatever they look like.
        var doubleDash = -1;
        for (var i = 0; i < parse.Tokens.Count && doubleDash < 0; i++)
            if (parse.Tokens[i].Type == TokenType.DoubleDash) doubleDash = i;
        foreach (var argument in command.Arguments)
            foreach (var token in parse.GetResult(argument)?.Tokens ?? [])
                if (LooksLikeOption(token.Value) && (doubleDash < 0 || IndexOf(parse.Tokens, token) < doubleDash))
                    errors.Add(UnknownOption(token.Value, options, command.Arguments.Count > 0));

        // Left over when the command's arguments are full (or it has none): reworded when it looks like an option.
        var unmatchedOptions = parse.UnmatchedTokens.Where(LooksLikeOption).ToHashSet(StringComparer.Ordinal);
        foreach (var error in parse.Errors)
        {
            var unknown = unmatchedOptions.FirstOrDefault(t => error.Message == $"Unrecognized command or argument '{t}'.");
            errors.Add(unknown is null ? error.Message : UnknownOption(unknown, options, command.Arguments.Count > 0));
        }
        return errors.Distinct().ToList();
    }

    /// <summary>The valid option closest to <paramref name="token"/> (its long name), or null when none is close.</summary>
    public static string? ClosestOption(string token, IEnumerable<Option> options)
    {
        var bare = token.TrimStart('-');
        if (bare.Length < 2) return null;
        var best = options.Where(o => !o.Hidden)
            .SelectMany(o => o.Aliases.Append(o.Name).Select(alias => (Option: o, Bare: alias.TrimStart('-'))))
            .Where(c => c.Bare.Length > 1)
            .Select(c => (c.Option, Distance: EditDistance.Between(bare, c.Bare), Prefix: CommonPrefix(bare, c.Bare), IsPrefix: c.Bare.StartsWith(bare, StringComparison.Ordinal)))
            .Where(c => c.Distance <= MaxSuggestionDistance || c.IsPrefix)
            .OrderBy(c => c.IsPrefix ? 0 : 1).ThenBy(c => c.Distance).ThenByDescending(c => c.Prefix)
            .FirstOrDefault();
        return best.Option?.Name;
    }

    /// <summary>"-layers": one dash before a long option's name. System.CommandLine would take it as -l with the value "ayers".</summary>
    private static IEnumerable<string> GluedLongOptions(IReadOnlyList<string> args, IReadOnlyList<Option> options)
    {
        var valueExpected = false;
        foreach (var arg in args)
        {
            if (arg == "--") yield break;
            if (valueExpected)
            {
                valueExpected = false;
                continue;
            }
            var known = options.FirstOrDefault(o => o.Name == arg || o.Aliases.Contains(arg));
            if (known is not null)
            {
                valueExpected = known.Arity.MinimumNumberOfValues > 0 && known.ValueType != typeof(bool);
                continue;
            }
            if (arg.Length <= 2 || arg[0] != '-' || arg[1] == '-' || arg.IndexOfAny([':', '=']) >= 0) continue;
            var asLong = "-" + arg;
            var match = options.Where(o => !o.Hidden && o.Name.StartsWith("--", StringComparison.Ordinal))
                .Select(o => (Option: o, Distance: EditDistance.Between(asLong, o.Name))).Where(c => c.Distance <= 1).OrderBy(c => c.Distance).FirstOrDefault();
            if (match.Option is null) continue;
            var shortAlias = "-" + arg[1];
            yield return options.Any(o => o.Aliases.Contains(shortAlias))
                ? $"unknown option '{arg}'; did you mean {match.Option.Name}? (long options take two dashes; {shortAlias} takes its value after a space: {shortAlias} VALUE)"
                : $"unknown option '{arg}'; did you mean {match.Option.Name}? (long options take two dashes)";
        }
    }

    private static string UnknownOption(string token, IEnumerable<Option> options, bool takesPaths)
    {
        var closest = ClosestOption(token, options);
        return $"unknown option '{token}'" +
               (closest is not null ? $"; did you mean {closest}?" : "") +
               (takesPaths ? $" (a file named '{token}' is passed after '--')" : "");
    }

    private static bool LooksLikeOption(string token) => token.Length > 1 && token[0] == '-';

    /// <summary>The options valid where the command line ended: the command's own and the recursive ones of its parents (--help).</summary>
    private static IEnumerable<Option> OptionsOf(CommandResult result)
    {
        foreach (var option in result.Command.Options) yield return option;
        for (var parent = result.Parent as CommandResult; parent is not null; parent = parent.Parent as CommandResult)
            foreach (var option in parent.Command.Options.Where(o => o.Recursive))
                yield return option;
    }

    private static int IndexOf(IReadOnlyList<Token> tokens, Token token)
    {
        for (var i = 0; i < tokens.Count; i++)
            if (ReferenceEquals(tokens[i], token)) return i;
        return -1;
    }

    private static int CommonPrefix(string a, string b)
    {
        var i = 0;
        while (i < a.Length && i < b.Length && a[i] == b[i]) i++;
        return i;
    }
}
