using System.Text.RegularExpressions;
using Kawa.Dataflow.Tests.Cli;

namespace Kawa.Dataflow.Tests.Docs;

/// <summary>Reads the user documentation under <c>docs/</c>, so tests can hold its tables and examples to the code.</summary>
internal static partial class DocText
{
    /// <summary>The text of <c>docs/<paramref name="file"/></c>.</summary>
    public static string Read(string file) => File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "docs", file)).Replace("\r\n", "\n", StringComparison.Ordinal);

    /// <summary>The text of <c>docs/<paramref name="file"/></c> with every run of white space (line breaks included) as one space.</summary>
    public static string Flat(string file) => WhiteSpaceRegex().Replace(Read(file), " ");

    /// <summary>
    /// The first table after the first line starting with <paramref name="heading"/>: each row's first cell (backticks
    /// removed) → its other cells as written, joined by <c> | </c>. Rows whose first cell names several keys (<c>`A` / `B`</c>, <c>`A`, `B`</c>)
    /// are keyed by that whole cell without backticks.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Table(string file, string heading)
    {
        var lines = Read(file).Split('\n');
        var start = Array.FindIndex(lines, l => l.StartsWith(heading, StringComparison.Ordinal));
        Assert.That(start, Is.GreaterThanOrEqualTo(0), $"docs/{file} has a line starting with '{heading}'");
        var rows = new Dictionary<string, string>(StringComparer.Ordinal);
        var inTable = false;
        for (var i = start + 1; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (!line.StartsWith('|'))
            {
                if (inTable)
                {
                    break;
                }

                continue;
            }

            inTable = true;
            // An escaped \| belongs to the cell's text.
            var cells = line.Replace("\\|", "\u0001", StringComparison.Ordinal).Trim('|').Split('|')
                .Select(c => c.Replace('\u0001', '|').Trim()).ToArray();
            if (cells.Length < 2 || cells[0].StartsWith("---", StringComparison.Ordinal) || cells[0].StartsWith(":--", StringComparison.Ordinal))
            {
                continue;
            }

            rows[cells[0].Replace("`", string.Empty, StringComparison.Ordinal)] = string.Join(" | ", cells[1..]);
        }

        Assert.That(rows, Is.Not.Empty, $"docs/{file} has a table after '{heading}'");
        return rows;
    }

    /// <summary>The fenced code block that follows the first occurrence of <paramref name="marker"/>.</summary>
    public static string CodeBlockAfter(string file, string marker, int skip = 0)
    {
        var text = Read(file);
        var at = text.IndexOf(marker, StringComparison.Ordinal);
        Assert.That(at, Is.GreaterThanOrEqualTo(0), $"docs/{file} contains '{marker}'");
        var match = FenceRegex().Match(text, at);
        for (var i = 0; i < skip; i++)
        {
            match = match.NextMatch();
        }

        Assert.That(match.Success, Is.True, $"docs/{file} has a code block after '{marker}'");
        return match.Groups["body"].Value;
    }

    [GeneratedRegex("\\s+")]
    private static partial Regex WhiteSpaceRegex();

    [GeneratedRegex("```[a-z]*\n(?<body>.*?)```", RegexOptions.Singleline)]
    private static partial Regex FenceRegex();
}
