using System.CommandLine;
using System.Text.RegularExpressions;
using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Tests.Cli;
using Kawa.Dataflow.Tests.Cli.Commands;

namespace Kawa.Dataflow.Tests.Docs;

/// <summary>docs/cli.md against the command line it describes: commands and options, defaults, the secret keys, and
/// the <c>validate</c> examples run as written.</summary>
public class CliDocTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-docs-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void CommandsTable_EveryCommand_ListsExactlyItsOptions()
    {
        var table = DocText.Table("cli.md", "## Commands");
        var root = KawaCli.BuildCommand(TextWriter.Null, TextWriter.Null);

        var documented = table.Keys.Where(k => k.StartsWith("kawa ", StringComparison.Ordinal))
            .ToDictionary(k => k.Split(' ')[1], k => Regex.Matches(k, "--[a-z-]+").Select(m => m.Value).Order().ToArray());
        var actual = root.Subcommands.ToDictionary(c => c.Name, c => c.Options.Select(o => o.Name).Order().ToArray());

        Assert.That(documented, Is.EquivalentTo(actual), "docs/cli.md's command table and KawaCli.BuildCommand agree, option for option");
    }

    [TestCase("publish", "--window", "at most N (default {0})", "--url", "nats://x", "--subject", "s", "f")]
    [TestCase("inspect", "--rows", "first N (default {0})", "p")]
    public void CommandsTable_OptionDefault_IsTheParsersDefault(string command, string option, string docPattern, params string[] rest)
    {
        var root = KawaCli.BuildCommand(TextWriter.Null, TextWriter.Null);
        var parsed = root.Parse([command, .. rest]);
        var value = parsed.GetValue<int>(option);
        var row = DocText.Table("cli.md", "## Commands").Single(r => r.Key.StartsWith($"kawa {command} ", StringComparison.Ordinal));

        Assert.That(parsed.Errors, Is.Empty);
        Assert.That(row.Value, Does.Contain(string.Format(System.Globalization.CultureInfo.InvariantCulture, docPattern, value)));
    }

    [Test]
    public void SecretsParagraph_NamesExactlyTheKeysThatAreMasked()
    {
        var docs = DocText.Read("cli.md");
        var paragraph = docs[docs.IndexOf("Secrets never appear", StringComparison.Ordinal)..];
        paragraph = paragraph[..paragraph.IndexOf("print as", StringComparison.Ordinal)];
        var documented = Regex.Matches(paragraph, "`([A-Za-z]+)`").Select(m => m.Groups[1].Value).ToArray();
        var field = typeof(Secrets).GetField("s_secretKeys", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!;
        var masked = (IEnumerable<string>)field.GetValue(null)!;

        Assert.That(documented, Is.EquivalentTo(masked));
        Assert.That(documented.All(Secrets.IsSecretKey), Is.True);
    }

    [Test]
    public void ValidateFailureExample_RunAsWritten_PrintsTheDocumentedErrors()
    {
        var config = DocText.CodeBlockAfter("cli.md", "For this `bad.json`:");
        var expected = DocText.CodeBlockAfter("cli.md", "For this `bad.json`:", skip: 1);
        var path = Path.Combine(_dir, "bad.json");
        File.WriteAllText(path, config);
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var code = KawaCli.Run(["validate", "--config", path], stdout, stderr);

        Assert.That(code, Is.EqualTo(ExitCodes.ConfigInvalid));
        Assert.That(stderr.ToString().Replace("\r\n", "\n", StringComparison.Ordinal), Is.EqualTo(expected));
    }

    [Test]
    public async Task ValidateSuccessExample_RunFromTheRepoRoot_PrintsTheDocumentedLine()
    {
        var expected = DocText.CodeBlockAfter("cli.md", "On success (stdout, exit 0):").Trim();
        var example = expected[..expected.IndexOf(':', StringComparison.Ordinal)];

        var result = await KawaProcess.RunAsync(TestPaths.RepoRoot, null, "validate", "--config", Path.Combine("examples", example));

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stderr);
        Assert.That(result.Stdout.Trim(), Is.EqualTo(expected));
    }
}
