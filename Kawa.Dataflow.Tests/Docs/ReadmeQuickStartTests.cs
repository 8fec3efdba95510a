using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Kawa.Dataflow.Tests.Cli;
using Kawa.Dataflow.Tests.Infrastructure;
using Kawa.Dataflow.Tests.Parquet;

namespace Kawa.Dataflow.Tests.Docs;

/// <summary>
/// The README's quick start, <c>bash scripts/quickstart.sh</c>, run as a user runs it: bash from the repository root,
/// a real nats-server, the script's own Debug build of kawa, the lake read back by DuckDB.
/// </summary>
/// <remarks>
/// The script writes <c>./lake</c> and <c>./lake-dead-letters</c> in the repository it sits in and builds into its
/// <c>bin</c>/<c>obj</c> folders, so each test runs it in a fresh copy of the working tree (sources only, no build
/// outputs) in a temp directory; <c>TMPDIR</c> points inside that directory too, so the script's JetStream store and
/// the build's scratch files go away with it. Nothing is written to the repository. The script picks a free port and
/// its own temp store, so it can run beside other tests and other copies of itself. The successful run (107–157 s on
/// a busy 2-core machine, all but a few seconds of it the Debug build) happens once and is shared by the tests that
/// check its outcome.
/// </remarks>
[NonParallelizable]
public sealed partial class ReadmeQuickStartTests
{
    /// <summary>Build outputs, VCS data and what earlier runs left; never copied.</summary>
    private static readonly HashSet<string> SkippedAnywhere = new(StringComparer.Ordinal) { "bin", "obj", ".git", "node_modules", "TestResults", "BenchmarkDotNet.Artifacts" };

    /// <summary>What the quick start and the daemon write at the repository root.</summary>
    private static readonly HashSet<string> SkippedAtRoot = new(StringComparer.Ordinal) { "lake", "lake-dead-letters", ".kawa" };

    private readonly List<TempDir> _dirs = [];
    private Task<QuickStartRun>? _freshRun;

    [OneTimeTearDown]
    public void DeleteCopies()
    {
        foreach (var dir in _dirs)
        {
            dir.Dispose();
        }
    }

    [Test]
    public async Task QuickStart_FreshCopyOfTheRepository_ExitsZeroWithEveryLogLineInAHivePartitionedLake()
    {
        var run = await FreshRunAsync();
        Assert.That(run.Result.ExitCode, Is.Zero, run.Describe());

        var lake = Path.Combine(run.Root, "lake");
        var entries = Directory.GetFiles(lake, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(lake, f)).ToArray();
        var files = entries.Where(f => !(f.StartsWith(".kawa-instance-", StringComparison.Ordinal) && f.EndsWith(".lock", StringComparison.Ordinal) && !f.Contains('/', StringComparison.Ordinal))).ToArray();
        Assert.That(files, Has.Length.GreaterThan(1).And.All.Match(@"^dt=\d{4}-\d{2}-\d{2}/hour=\d{2}/[^/]+\.parquet$"), "besides the writer's instance lock, only committed Parquet files, each under dt=YYYY-MM-DD/hour=HH/ (no temporary file left)");

        // The partitions are the UTC days and hours of the log's timestamps (some lines are at +0200).
        var log = File.ReadLines(Path.Combine(run.Root, "samples", "access.log")).ToList();
        var hours = log.Select(line => UtcPartition(LogTime().Match(line))).Distinct().ToList();
        Assert.That(hours, Has.Count.GreaterThan(1), "the sample spans several hours");
        Assert.That(files.Select(f => Path.GetDirectoryName(f)).Distinct(), Is.EquivalentTo(hours), "one dt=/hour= directory per UTC hour of the log");

        var rows = await DuckDb.QueryAsync(
            TimeSpan.FromMinutes(2),
            "SET TimeZone='UTC'",
            $"SELECT count(*) AS n, count(*) FILTER (WHERE strftime(ts, '%Y-%m-%d/%H') <> CAST(dt AS VARCHAR) || '/' || lpad(CAST(hour AS VARCHAR), 2, '0')) AS misplaced FROM read_parquet({DuckDb.Lit(lake + "/**/*.parquet")}, hive_partitioning=true)");
        Assert.That(rows.Long(0, "n"), Is.EqualTo(log.Count), "one row per line of samples/access.log");
        Assert.That(rows.Long(0, "misplaced"), Is.Zero, "each row's partition is its own ts day and hour");

        var deadLetters = Path.Combine(run.Root, "lake-dead-letters");
        Assert.That(Directory.Exists(deadLetters) ? Directory.GetFiles(deadLetters, "*.parquet", SearchOption.AllDirectories) : [], Is.Empty, "every sample line parses: nothing dead-lettered");
    }

    [Test]
    public async Task QuickStart_FreshCopyOfTheRepository_PrintsRowsPerPartitionAndTheTopStatusCodes()
    {
        var run = await FreshRunAsync();
        Assert.That(run.Result.ExitCode, Is.Zero, run.Describe());
        var lake = Path.Combine(run.Root, "lake");
        var stdout = run.Result.Stdout;
        var lines = File.ReadLines(Path.Combine(run.Root, "samples", "access.log")).Count();

        Assert.That(stdout, Does.Contain($"published {lines} message(s) to 'access.log' (stream ACCESS"), "step 4: kawa publish");
        Assert.That(stdout, Does.Match($@"(?m)^{Regex.Escape(lake)}: \d+ file\(s\), {lines} rows"), "step 6: the lake's total");
        Assert.That(stdout, Does.Contain("rows per partition:").And.Match(@"(?m)^\s+dt=\d{4}-\d{2}-\d{2}/hour=\d{2}\s+\d+ rows in \d+ file\(s\)$"));
        Assert.That(stdout, Does.Contain("top values of 'status':"));

        // The counts inspect prints are the lake's: every status DuckDB counts is on its own line with its count.
        var statuses = await DuckDb.QueryAsync(
            TimeSpan.FromMinutes(2),
            $"SELECT CAST(status AS VARCHAR) AS status, count(*) AS n FROM read_parquet({DuckDb.Lit(lake + "/**/*.parquet")}, hive_partitioning=true) GROUP BY status ORDER BY n DESC, status LIMIT 10");
        Assert.That(statuses.Rows, Has.Length.GreaterThan(2), "the sample has several status codes");
        var top = stdout[stdout.IndexOf("top values of 'status':", StringComparison.Ordinal)..];
        for (var i = 0; i < statuses.Rows.Length; i++)
        {
            Assert.That(top, Does.Match($@"(?m)^\s+{statuses.Str(i, "status")}\s+{statuses.Long(i, "n")}$"), $"status {statuses.Str(i, "status")}");
        }
    }

    [Test]
    public async Task QuickStart_FreshCopyOfTheRepository_StopsItsServerAndRemovesItsStore()
    {
        var run = await FreshRunAsync();
        Assert.That(run.Result.ExitCode, Is.Zero, run.Describe());
        Assert.That(run.Result.Stderr, Does.Contain("nats-server nats://127.0.0.1:").And.Contain(run.Tmp), "the server ran with its store under TMPDIR");

        Assert.That(NatsServersUsing(run.Tmp), Is.Empty, "the script's nats-server is gone when the script exits");
        Assert.That(Directory.GetDirectories(run.Tmp, "kawa-quickstart-*"), Is.Empty, "its store directory is removed");
    }

    [TestCase("missing.log")]
    [TestCase("no-such-dir/missing.log")]
    public async Task QuickStart_MissingAccessLog_ExitsThreeNamingTheFileBeforeStartingAnything(string relative)
    {
        var (root, tmp) = CopyRepository();
        var missing = Path.Combine(tmp, relative);

        var result = await RunScriptAsync(root, tmp, TimeSpan.FromMinutes(1), missing);

        Assert.That(result.ExitCode, Is.EqualTo(3), result.Stderr);
        Assert.That(result.Stderr, Does.Contain($"quickstart: access log '{missing}' not found"));
        Assert.That(result.Stderr, Does.Not.Contain("== 1/6"), "no step started");
        Assert.That(result.Stdout, Is.Empty);
        Assert.That(Directory.EnumerateFileSystemEntries(tmp), Is.Empty, "no server store, no build scratch files");
        Assert.That(Directory.Exists(Path.Combine(root, "lake")) || Directory.Exists(Path.Combine(root, "Kawa.Dataflow.Cli", "bin")), Is.False, "nothing built, no lake");
    }

    /// <summary>The successful run the outcome tests share: started by the first of them, awaited by all.</summary>
    private Task<QuickStartRun> FreshRunAsync() => _freshRun ??= RunFreshAsync();

    private async Task<QuickStartRun> RunFreshAsync()
    {
        var (root, tmp) = CopyRepository();
        var clock = Stopwatch.StartNew();
        var result = await RunScriptAsync(root, tmp, TimeSpan.FromMinutes(10));
        await TestContext.Out.WriteLineAsync($"scripts/quickstart.sh in a fresh copy took {clock.Elapsed.TotalSeconds:F0} s");
        return new QuickStartRun(root, tmp, result);
    }

    /// <summary>The working tree's files (not its build outputs, VCS data or lakes) copied to a new temp directory,
    /// plus an empty directory for the script's TMPDIR beside it.</summary>
    private (string Root, string Tmp) CopyRepository()
    {
        var dir = new TempDir();
        _dirs.Add(dir);
        var root = dir.File("repo");
        var tmp = dir.File("tmp");
        Directory.CreateDirectory(tmp);
        Copy(new DirectoryInfo(TestPaths.RepoRoot), root, atRoot: true);
        return (root, tmp);

        static void Copy(DirectoryInfo from, string to, bool atRoot)
        {
            Directory.CreateDirectory(to);
            foreach (var entry in from.EnumerateFileSystemInfos())
            {
                if (entry.LinkTarget is not null || SkippedAnywhere.Contains(entry.Name) || (atRoot && SkippedAtRoot.Contains(entry.Name)))
                {
                    continue;
                }

                var target = Path.Combine(to, entry.Name);
                if (entry is DirectoryInfo sub)
                {
                    Copy(sub, target, atRoot: false);
                }
                else
                {
                    File.Copy(entry.FullName, target);
                }
            }
        }
    }

    /// <summary>Runs <c>bash scripts/quickstart.sh [args]</c> from <paramref name="root"/>, as the README says, with
    /// TMPDIR set to <paramref name="tmp"/>; kills the script and its children (build, server, kawa) on timeout.</summary>
    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunScriptAsync(string root, string tmp, TimeSpan timeout, params string[] args)
    {
        var start = new ProcessStartInfo("bash")
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("scripts/quickstart.sh");
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // A user's shell has none of the MSBuild variables `dotnet test` hands its test host.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(key);
        }

        start.Environment["TMPDIR"] = tmp;
        // No build server or compiler server outlives the test (they would keep running from the deleted copy).
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        start.Environment["UseSharedCompilation"] = "false";

        return await ChildProcess.RunAsync(start, timeout, stderr => $"scripts/quickstart.sh did not exit within {timeout.TotalMinutes} min:\n{Tail(stderr)}");
    }

    /// <summary>Live nats-server processes whose command line mentions <paramref name="path"/> (their store is under it).</summary>
    private static List<int> NatsServersUsing(string path)
    {
        var found = new List<int>();
        foreach (var process in Process.GetProcessesByName("nats-server"))
        {
            using (process)
            {
                try
                {
                    if (File.ReadAllText($"/proc/{process.Id}/cmdline").Contains(path, StringComparison.Ordinal))
                    {
                        found.Add(process.Id);
                    }
                }
                catch (IOException)
                {
                    // Exited between the listing and the read.
                }
            }
        }

        return found;
    }

    /// <summary>The <c>dt=yyyy-MM-dd/hour=HH</c> directory of a combined-log timestamp, in UTC.</summary>
    private static string UtcPartition(Match time)
    {
        Assert.That(time.Success, Is.True, "every sample line has a [dd/MMM/yyyy:HH:mm:ss ±hhmm] timestamp");
        var at = DateTimeOffset.ParseExact($"{time.Groups[1].Value} {time.Groups[2].Value}:{time.Groups[3].Value}", "dd/MMM/yyyy:HH:mm:ss zzz", CultureInfo.InvariantCulture);
        return at.UtcDateTime.ToString("'dt='yyyy-MM-dd'/hour='HH", CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"\[(\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2}) ([+-]\d{2})(\d{2})\]")]
    private static partial Regex LogTime();

    private static string Tail(string text) => text.Length <= 4000 ? text : "…" + text[^4000..];

    private sealed record QuickStartRun(string Root, string Tmp, (int ExitCode, string Stdout, string Stderr) Result)
    {
        public string Describe() => $"exit {Result.ExitCode}\n--- stdout\n{Tail(Result.Stdout)}\n--- stderr\n{Tail(Result.Stderr)}";
    }
}
