using System.Diagnostics;
using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Cli.Commands;

/// <summary>Runs the built kawa.dll as a real child process and captures its output.</summary>
internal static class KawaProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Task<Result> RunAsync(string workingDirectory, IDictionary<string, string>? environment, params string[] args)
        => RunAsync(TimeSpan.FromSeconds(60), workingDirectory, environment, args);

    /// <summary>Runs kawa with <paramref name="args"/>; kills it (and fails) if it has not exited within <paramref name="timeout"/>.</summary>
    public static async Task<Result> RunAsync(TimeSpan timeout, string workingDirectory, IDictionary<string, string>? environment, params string[] args)
    {
        var (exitCode, stdout, stderr) = await ChildProcess.RunAsync(
            StartInfo(workingDirectory, environment, args),
            timeout,
            _ => $"kawa {string.Join(' ', args)} did not exit within {timeout.TotalSeconds} s.");
        return new Result(exitCode, stdout, stderr);
    }

    /// <summary>How every test launches kawa: the built kawa.dll under dotnet, all three streams redirected, with
    /// <paramref name="environment"/> added. <see cref="KawaDaemon"/> uses it too, so both launch kawa the same way.</summary>
    public static ProcessStartInfo StartInfo(string workingDirectory, IDictionary<string, string>? environment, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(TestPaths.KawaDll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        return start;
    }
}
