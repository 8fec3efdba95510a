using System.Text.Json;
using System.Xml.Linq;
using Kawa.Dataflow.Tests.Cli;

namespace Kawa.Dataflow.Tests.Packaging;

/// <summary>
/// The repository's build rules, which every contributor relies on without reading them: any .NET 10 SDK builds it,
/// warnings (analyzers, nullable, missing docs on public API) fail the build, and package versions live in one place.
/// </summary>
public sealed class RepositoryFoundationTests
{
    private static string Root => TestPaths.RepoRoot;

    private static string[] Projects => Directory.GetFiles(Root, "*.csproj", SearchOption.AllDirectories)
        .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}node_modules{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
            && !p.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
        .ToArray();

    [Test]
    public void GlobalJson_AnySdkOfTheDotnet10FeatureBands_IsAccepted()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "global.json")));
        var sdk = json.RootElement.GetProperty("sdk");

        // The lowest 10.0 band, rolling forward over feature bands (10.0.1xx ... 10.0.9xx) but not to 11.
        Assert.That(sdk.GetProperty("version").GetString(), Is.EqualTo("10.0.100"));
        Assert.That(sdk.GetProperty("rollForward").GetString(), Is.EqualTo("latestFeature"));
    }

    [Test]
    public void DirectoryBuildProps_WarningsAreErrorsWithAnalyzersNullableAndDocsOnShippedLibraries()
    {
        var props = XDocument.Load(Path.Combine(Root, "Directory.Build.props"));
        string? Property(string name) => props.Descendants(name).FirstOrDefault()?.Value;

        Assert.That(Property("TargetFramework"), Is.EqualTo("net10.0"));
        Assert.That(Property("TreatWarningsAsErrors"), Is.EqualTo("true"));
        Assert.That(Property("Nullable"), Is.EqualTo("enable"));
        Assert.That(Property("AnalysisLevel"), Is.Not.Null.And.Not.Empty);
        Assert.That(Property("EnforceCodeStyleInBuild"), Is.EqualTo("true"));
        Assert.That(Property("GenerateDocumentationFile"), Is.EqualTo("true"), "documentation (and CS1591 for undocumented public API) on the shipped libraries");
        Assert.That(Property("NoWarn"), Does.Not.Contain("1591"), "undocumented public API must not be silenced repository-wide");
    }

    [Test]
    public void Projects_PackageVersions_AreCentral()
    {
        var central = XDocument.Load(Path.Combine(Root, "Directory.Packages.props"));
        Assert.That(central.Descendants("ManagePackageVersionsCentrally").Single().Value, Is.EqualTo("true"));
        var pinned = central.Descendants("PackageVersion").Select(p => (string?)p.Attribute("Include")).ToHashSet(StringComparer.OrdinalIgnoreCase);

        Assert.That(Projects, Has.Length.GreaterThanOrEqualTo(5));
        foreach (var project in Projects)
        {
            foreach (var reference in XDocument.Load(project).Descendants("PackageReference"))
            {
                var name = (string?)reference.Attribute("Include");
                Assert.That(reference.Attribute("Version"), Is.Null, $"{Path.GetFileName(project)}: {name} has its own version; put it in Directory.Packages.props");
                Assert.That(pinned, Does.Contain(name), $"{Path.GetFileName(project)}: {name} has no central version");
            }
        }
    }

    [Test]
    public void EditorConfig_IsTheRootAndRequiresConfigureAwaitInLibraries()
    {
        var lines = File.ReadAllLines(Path.Combine(Root, ".editorconfig")).Select(l => l.Trim()).ToArray();

        Assert.That(lines, Does.Contain("root = true"));
        Assert.That(lines, Does.Contain("dotnet_diagnostic.CA2007.severity = warning"), "library code must not capture the synchronization context");
    }
}
