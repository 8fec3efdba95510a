using System.Diagnostics;
using System.Text.Json;

namespace Kawa.Dataflow.Tests.Parquet.Lake;

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "kawa-lake-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    /// <summary>Every file below the directory (hidden ones included), relative, with '/' separators.</summary>
    public string[] AllFiles() => Directory
        .EnumerateFiles(Path, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
        .Select(f => System.IO.Path.GetRelativePath(Path, f).Replace('\\', '/'))
        .Order(StringComparer.Ordinal)
        .ToArray();

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A clock the test sets.</summary>
internal sealed class ManualTimeProvider(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;

    public override DateTimeOffset GetUtcNow() => Now;

    public void Advance(TimeSpan by) => Now += by;
}

internal static class LakeContent
{
    /// <summary>The fault host's content: byte i is i % 251.</summary>
    public static byte[] Pattern(long size)
    {
        var bytes = new byte[size];
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)(i % 251);
        }
        return bytes;
    }
}

/// <summary>Where the repository and the fault host are, found from the test assembly's location.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>The fault host built next to the tests (same configuration).</summary>
    public static string FaultHostDll
    {
        get
        {
            var testBin = AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar);
            var framework = Path.GetFileName(testBin);
            var configuration = Path.GetFileName(Path.GetDirectoryName(testBin)!);
            var dll = Path.Combine(Root, "Kawa.Dataflow.Tests.FaultHost", "bin", configuration, framework, "Kawa.Dataflow.Tests.FaultHost.dll");
            if (!File.Exists(dll))
            {
                Assert.Fail($"The fault host is not built at {dll}; the test project references it, so build Kawa.Dataflow.Tests first.");
            }
            return dll;
        }
    }

    public static string NodeModules => Path.Combine(Root, "tools", "node", "node_modules");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Kawa.Dataflow.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("Kawa.Dataflow.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>The JSON line the fault host prints when it finishes.</summary>
internal sealed record FaultHostResult(bool Ok, string? File, string? Failure, string? Message, int ExitCode, string Stderr, string[]? Remaining, Kawa.Dataflow.Parquet.Lake.LakeCleanupResult? Cleanup, string Json = "");

/// <summary>A running fault host child process; killed (SIGKILL) and reaped on dispose.</summary>
internal sealed class FaultHostProcess : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);
    private readonly Process _process;
    private readonly Task<string> _stderr;

    private FaultHostProcess(Process process)
    {
        _process = process;
        _stderr = process.StandardError.ReadToEndAsync();
    }

    /// <summary>
    /// Starts <c>dotnet FaultHost.dll args</c>, optionally behind a wrapper command such as
    /// <c>setpriv ...</c> or <c>prlimit ...</c>, with <c>KAWA_FAULT</c> set to <paramref name="fault"/>.
    /// </summary>
    public static FaultHostProcess Start(string[] args, string? fault = null, string[]? wrapper = null, IDictionary<string, string>? environment = null)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        string[] command = [.. wrapper ?? [], dotnet, RepoPaths.FaultHostDll, .. args];
        var info = new ProcessStartInfo(command[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in command.Skip(1))
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["KAWA_FAULT"] = fault ?? "";
        info.Environment["DOTNET_NOLOGO"] = "1";
        // The diagnostics IPC socket and W^X memfd mappings are not what these tests are about, and both fail under
        // an unprivileged user or a small file-size limit before Main runs.
        info.Environment["DOTNET_EnableDiagnostics"] = "0";
        info.Environment["DOTNET_EnableWriteXorExecute"] = "0";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        return new FaultHostProcess(Process.Start(info)!);
    }

    /// <summary>Waits for the <c>READY {json}</c> line of a fault point and returns its <c>where</c> value.</summary>
    public async Task<string> WaitUntilReadyAsync()
    {
        using var timeout = new CancellationTokenSource(Patience);
        while (true)
        {
            var line = await _process.StandardOutput.ReadLineAsync(timeout.Token);
            if (line is null)
            {
                await _process.WaitForExitAsync(timeout.Token);
                Assert.Fail($"The fault host exited ({_process.ExitCode}) before reaching its fault point. stderr: {await _stderr}");
            }
            if (line!.StartsWith("READY ", StringComparison.Ordinal))
            {
                using var json = JsonDocument.Parse(line["READY ".Length..]);
                return json.RootElement.GetProperty("where").GetString()!;
            }
        }
    }

    /// <summary>Lets a host started with <c>KAWA_FAULT_RESUME=stdin</c> continue past its fault point.</summary>
    public async Task ResumeAsync()
    {
        await _process.StandardInput.WriteLineAsync();
        await _process.StandardInput.FlushAsync();
    }

    /// <summary>SIGKILLs the process (Process.Kill on Linux) and waits until it is gone.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        using var timeout = new CancellationTokenSource(Patience);
        await _process.WaitForExitAsync(timeout.Token);
    }

    /// <summary>Waits for the process to finish and parses its last JSON line.</summary>
    public async Task<FaultHostResult> WaitForResultAsync()
    {
        using var timeout = new CancellationTokenSource(Patience);
        var stdout = await _process.StandardOutput.ReadToEndAsync(timeout.Token);
        await _process.WaitForExitAsync(timeout.Token);
        var stderr = await _stderr;
        var last = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
        if (last is null || !last.StartsWith('{'))
        {
            Assert.Fail($"The fault host printed no result (exit {_process.ExitCode}). stdout: {stdout} stderr: {stderr}");
        }
        using var json = JsonDocument.Parse(last!);
        var root = json.RootElement;
        return new FaultHostResult(
            root.GetProperty("ok").GetBoolean(),
            root.TryGetProperty("file", out var file) ? file.GetString() : null,
            root.TryGetProperty("failure", out var failure) ? failure.GetString() : null,
            root.TryGetProperty("message", out var message) ? message.GetString() : null,
            _process.ExitCode,
            stderr,
            root.TryGetProperty("remaining", out var remaining) ? remaining.EnumerateArray().Select(e => e.GetString()!).ToArray() : null,
            root.TryGetProperty("cleanup", out var cleanup)
                ? new Kawa.Dataflow.Parquet.Lake.LakeCleanupResult(cleanup.GetProperty("Removed").GetInt32(), cleanup.GetProperty("Failed").GetInt32(), cleanup.GetProperty("Kept").GetInt32())
                : null,
            last!);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
