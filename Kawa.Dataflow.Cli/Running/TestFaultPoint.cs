using System.Diagnostics;
using System.Globalization;
using Kawa.Dataflow.Parquet.Sink;

namespace Kawa.Dataflow.Cli.Running;

/// <summary>
/// Test-only crash injection, off unless the environment variable <c>KAWA_FAULT_POINT</c> is set: the end-to-end tests
/// use it to SIGKILL <c>kawa run</c> exactly at a named point of the Parquet destination.
/// </summary>
/// <remarks>
/// <para><c>KAWA_FAULT_POINT=&lt;name&gt;[:&lt;n&gt;]</c>: the n-th time (default the first) the main Parquet destination
/// reaches the point, kawa writes <c>kawa: fault point '&lt;name&gt;' reached (hit n): SIGKILL</c> to standard error and
/// sends itself SIGKILL (a real kill: no finally blocks, no flush, no graceful shutdown, exit status 137). Names:
/// <c>mid-batch</c>, <c>after-row-group</c>, <c>before-rename</c>, <c>after-rename</c> (see <see cref="ParquetFaultPoints"/>).</para>
/// <para>An unknown name or count is reported on standard error and ignored. Never set it in production.</para>
/// </remarks>
internal static class TestFaultPoint
{
    /// <summary>The environment variable.</summary>
    public const string Variable = "KAWA_FAULT_POINT";

    /// <summary>The hook for <c>ParquetDestinationOptions.FaultPointReached</c>, or <see langword="null"/> when the variable is unset.</summary>
    public static Action<string>? FromEnvironment(TextWriter stderr)
    {
        var value = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        var colon = value.IndexOf(':', StringComparison.Ordinal);
        var name = colon < 0 ? value : value[..colon];
        var target = 1;
        if (!ParquetFaultPoints.All.Contains(name) || (colon >= 0 && (!int.TryParse(value.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out target) || target < 1)))
        {
            stderr.WriteLine($"kawa: {Variable}='{value}' ignored: expected <name>[:<n>] with name one of {string.Join(", ", ParquetFaultPoints.All)} and n >= 1");
            return null;
        }

        var hits = 0;
        return point =>
        {
            if (point != name || Interlocked.Increment(ref hits) != target)
            {
                return;
            }

            stderr.WriteLine($"kawa: fault point '{name}' reached (hit {target}): SIGKILL");
            stderr.Flush();
            using var self = Process.GetCurrentProcess();
            self.Kill(); // SIGKILL on Unix; the process ends here.
            Thread.Sleep(Timeout.Infinite);
        };
    }
}
