namespace Kawa.Dataflow.Tests.Cli;

/// <summary>What ships to users (the daemon's sources, the examples, the bundled sample and the quick start) stands
/// on its own: the test data folder beside the repository (<c>../shared</c>) exists only on the project's machines.</summary>
public class ShippedFilesTests
{
    private static IEnumerable<string> Shipped()
    {
        var root = TestPaths.RepoRoot;
        var cli = Path.Combine(root, "Kawa.Dataflow.Cli");
        return Directory.EnumerateFiles(cli, "*", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Concat(Directory.EnumerateFiles(Path.Combine(root, "examples")))
            .Concat(Directory.EnumerateFiles(Path.Combine(root, "samples")))
            .Append(Path.Combine(root, "scripts", "quickstart.sh"));
    }

    [Test]
    public void ShippedFiles_NeverReferToTheSharedTestDataFolder()
    {
        var offenders = Shipped()
            .Where(f => File.ReadAllText(f) is var text
                && (text.Contains("../shared", StringComparison.Ordinal) || text.Contains("shared/data", StringComparison.Ordinal)))
            .Select(f => Path.GetRelativePath(TestPaths.RepoRoot, f))
            .ToList();

        Assert.That(Shipped().Count(), Is.GreaterThan(10), "the daemon's sources were found");
        Assert.That(offenders, Is.Empty);
    }
}
