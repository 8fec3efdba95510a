using System.Diagnostics;

namespace Kawa.Dataflow.Tests.Infrastructure;

/// <summary>Runs a child process to its end with a time limit: how the tests run kawa, node (DuckDB) and the quick start.</summary>
internal static class ChildProcess
{
    /// <summary>
    /// Starts <paramref name="start"/> (standard output and error redirected), closes its input if that is redirected,
    /// collects both outputs and waits for it to exit. Past <paramref name="timeout"/> it kills the whole process tree
    /// and throws <see cref="TimeoutException"/> with the message <paramref name="describeTimeout"/> makes from the
    /// error output so far.
    /// </summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(ProcessStartInfo start, TimeSpan timeout, Func<string, string> describeTimeout)
    {
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{start.FileName} did not start");
        if (start.RedirectStandardInput)
        {
            process.StandardInput.Close();
        }

        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException(describeTimeout(await stderr));
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
