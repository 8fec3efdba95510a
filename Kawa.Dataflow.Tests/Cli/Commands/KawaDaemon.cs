using System.Diagnostics;

namespace Kawa.Dataflow.Tests.Cli.Commands;

/// <summary>
/// A long-running <c>kawa</c> child process: standard input kept open for the test to write to, standard output
/// collected line by line with a way to wait for a given number of lines, signals sent with <c>kill</c>.
/// </summary>
internal sealed class KawaDaemon : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _stdout = [];
    private readonly System.Text.StringBuilder _stderr = new();
    private readonly SemaphoreSlim _lineArrived = new(0);
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private KawaDaemon(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                _stdoutClosed.TrySetResult();
                return;
            }

            lock (_stdout)
            {
                _stdout.Add(e.Data);
            }

            _lineArrived.Release();
        };
        process.ErrorDataReceived += (_, e) =>
        {
            lock (_stderr)
            {
                _stderr.AppendLine(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;

    /// <summary>Whether the process has exited (killed, crashed or done).</summary>
    public bool HasExited => _process.HasExited;

    public StreamWriter Stdin => _process.StandardInput;

    public IReadOnlyList<string> StdoutLines
    {
        get
        {
            lock (_stdout)
            {
                return [.. _stdout];
            }
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public static KawaDaemon Start(string workingDirectory, params string[] args) => Start(workingDirectory, null, args);

    /// <summary>Starts kawa with extra environment variables (e.g. a test fault point).</summary>
    public static KawaDaemon Start(string workingDirectory, IDictionary<string, string>? environment, params string[] args)
    {
        var start = KawaProcess.StartInfo(workingDirectory, environment, args);
        return new KawaDaemon(Process.Start(start)!);
    }

    /// <summary>Waits (bounded: an external process) until at least <paramref name="count"/> stdout lines arrived.</summary>
    public async Task WaitForLinesAsync(int count, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        while (StdoutLines.Count < count)
        {
            try
            {
                await _lineArrived.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"kawa wrote {StdoutLines.Count} of {count} expected lines. stderr:\n{Stderr}");
            }
        }
    }

    /// <summary>Sends a signal with <c>kill -SIGNAL pid</c>.</summary>
    public async Task SignalAsync(string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        await kill.WaitForExitAsync();
        Assert.That(kill.ExitCode, Is.Zero, $"kill -{signal} failed");
    }

    /// <summary>Waits for the exit (bounded) and for standard output to close; returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            await _stdoutClosed.Task.WaitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"kawa did not exit in time. stderr:\n{Stderr}");
        }

        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        _lineArrived.Dispose();
    }
}
