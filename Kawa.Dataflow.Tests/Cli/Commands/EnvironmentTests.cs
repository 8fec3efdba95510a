using Kawa.Dataflow.Cli;

namespace Kawa.Dataflow.Tests.Cli.Commands;

/// <summary>How <c>KAWA_</c> environment variables reach the configuration.</summary>
public sealed class EnvironmentTests
{
    [Test]
    public async Task Validate_LogLevelVariableBesideSettings_IsNotAConfigKeyAndSettingsStillApply()
    {
        var environment = new Dictionary<string, string>
        {
            ["KAWA_LOG_LEVEL"] = "Debug",
            ["KAWA_PIPELINE__LIMITS__DRAINTIMEOUT"] = "00:00:07",
        };

        var result = await KawaProcess.RunAsync(TestPaths.RepoRoot, environment, "validate", "--config", "examples/access-log-to-stdout.json", "--print");

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stdout + result.Stderr);
        Assert.That(result.Stdout, Does.Contain("00:00:07").And.Not.Contain("LOG_LEVEL"));
    }
}
