using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Kawa.Dataflow.Tests.Nats.Infrastructure;

/// <summary>
/// A real nats-server child process on a free loopback port with JetStream in its own temp store.
/// </summary>
/// <remarks>Readiness is established by connecting and reading INFO, never by sleeping. <see cref="KillAsync"/> is a
/// SIGKILL; <see cref="RestartAsync"/> starts again on the same port and store.</remarks>
public sealed class NatsServerProcess : IAsyncDisposable
{
    public const string ServerPath = "/usr/sbin/nats-server";

    private readonly string _extraConfig;
    private readonly bool _ownsDirectory;
    private Process? _process;
    private readonly StringBuilder _output = new();

    private NatsServerProcess(string directory, int port, string extraConfig, bool ownsDirectory)
    {
        Directory = directory;
        Port = port;
        _extraConfig = extraConfig;
        _ownsDirectory = ownsDirectory;
    }

    public string Directory { get; }

    public int Port { get; }

    public string Url => $"nats://127.0.0.1:{Port}";

    public string StoreDirectory => Path.Combine(Directory, "store");

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts a server; <paramref name="extraConfig"/> is appended to its config file (auth, tls, limits).</summary>
    public static async Task<NatsServerProcess> StartAsync(string extraConfig = "", int? port = null, string? directory = null)
    {
        var owns = directory is null;
        directory ??= Path.Combine(Path.GetTempPath(), "kawa-nats-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(directory);
        var server = new NatsServerProcess(directory, port ?? FreePort(), extraConfig, owns);
        await server.StartProcessAsync();
        return server;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>SIGKILL: no graceful shutdown, no lame duck, the store as it is on disk.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    /// <summary>SIGSTOP: the server keeps its sockets open but answers nothing (a hung peer).</summary>
    public Task PauseAsync() => SignalAsync("-STOP");

    /// <summary>SIGCONT after <see cref="PauseAsync"/>.</summary>
    public Task ResumeAsync() => SignalAsync("-CONT");

    private async Task SignalAsync(string signal)
    {
        using var kill = Process.Start("kill", [signal, _process!.Id.ToString()]);
        await kill.WaitForExitAsync();
    }

    public async Task RestartAsync()
    {
        await KillAsync();
        await StartProcessAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process?.Dispose();
        if (_ownsDirectory)
        {
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private async Task StartProcessAsync()
    {
        var config = Path.Combine(Directory, "server.conf");
        await File.WriteAllTextAsync(config, _extraConfig);
        var info = new ProcessStartInfo(ServerPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "-c", config, "-a", "127.0.0.1", "-p", Port.ToString(), "-js", "-sd", StoreDirectory })
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("nats-server did not start");
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        await WaitReadyAsync(process);
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }

    private async Task WaitReadyAsync(Process process)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"nats-server exited with {process.ExitCode}: {Output}");
            }

            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port);
                var buffer = new byte[4];
                var read = await client.GetStream().ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
                if (read > 0 && Encoding.ASCII.GetString(buffer, 0, read).StartsWith("INFO", StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (SocketException)
            {
                // Not listening yet: bounded wait for an external process.
                await Task.Delay(50);
            }
        }

        throw new TimeoutException($"nats-server did not accept connections on {Port}: {Output}");
    }
}
