namespace Kawa.Dataflow.Tests.Cli;

/// <summary>Where the repository, its shared test data and the built kawa.dll are.</summary>
internal static class TestPaths
{
    /// <summary>The folder holding Kawa.Dataflow.sln, found by walking up from the test assembly.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The shared 10,000-line Apache combined log (outside the repository).</summary>
    public static string AccessLog10k => Path.Combine(SharedData, "access-logs", "apache-combined-10k.log");

    /// <summary>
    /// <c>../shared/data</c> beside the repository; from a git worktree nested deeper, the nearest <c>shared/data</c> above it.
    /// </summary>
    public static string SharedData { get; } = FindSharedData();

    /// <summary>kawa.dll as copied next to the test assembly by the project reference.</summary>
    public static string KawaDll => Path.Combine(TestContext.CurrentContext.TestDirectory, "kawa.dll");

    private static string FindSharedData()
    {
        for (var dir = new DirectoryInfo(RepoRoot).Parent; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"shared/data not found above {RepoRoot}.");
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Kawa.Dataflow.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Kawa.Dataflow.sln not found above the test directory.");
    }
}
