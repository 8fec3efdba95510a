using System.Diagnostics;
using System.Text.Json;

namespace Kawa.Dataflow.Tests.Cli.EndToEnd;

/// <summary>
/// What a lake built from an access log must hold, computed by <c>ground-truth.js</c> (a regex in Node, sharing no code
/// with kawa's parser). Its header comment states the rules both must agree on.
/// </summary>
/// <param name="Lines">Non-empty lines read.</param>
/// <param name="Events">Lines that are events.</param>
/// <param name="Rejected">1-based numbers of the lines that are not.</param>
/// <param name="ByStatus">Events per status code.</param>
/// <param name="Bytes">Sum of the sizes (<c>-</c> is 0).</param>
/// <param name="ByHour">Events per UTC hour, keyed by hours since the Unix epoch.</param>
/// <param name="ByPartition">Events per <c>dt=yyyy-MM-dd/hour=HH</c> (UTC).</param>
internal sealed record GroundTruth(
    long Lines,
    long Events,
    IReadOnlyList<int> Rejected,
    IReadOnlyDictionary<string, long> ByStatus,
    long Bytes,
    IReadOnlyDictionary<long, long> ByHour,
    IReadOnlyDictionary<string, long> ByPartition)
{
    public static string Script => Path.Combine(TestPaths.RepoRoot, "Kawa.Dataflow.Tests", "Cli", "EndToEnd", "ground-truth.js");

    /// <summary>Runs the script over <paramref name="file"/>.</summary>
    public static async Task<GroundTruth> ComputeAsync(string file)
    {
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Script);
        start.ArgumentList.Add(file);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("node did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"ground-truth.js failed ({process.ExitCode}): {await stderr}");
        }

        using var doc = JsonDocument.Parse(await stdout);
        var root = doc.RootElement;
        return new GroundTruth(
            root.GetProperty("lines").GetInt64(),
            root.GetProperty("events").GetInt64(),
            [.. root.GetProperty("rejected").EnumerateArray().Select(e => e.GetInt32())],
            root.GetProperty("byStatus").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64()),
            root.GetProperty("bytes").GetInt64(),
            root.GetProperty("byHour").EnumerateObject().ToDictionary(p => long.Parse(p.Name, System.Globalization.CultureInfo.InvariantCulture), p => p.Value.GetInt64()),
            root.GetProperty("byPartition").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64()));
    }
}
