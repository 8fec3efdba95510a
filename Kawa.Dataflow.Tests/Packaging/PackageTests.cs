using System.Diagnostics;
using System.IO.Compression;
using System.Xml.Linq;
using Kawa.Dataflow.Tests.Cli;

namespace Kawa.Dataflow.Tests.Packaging;

/// <summary>
/// <c>dotnet pack</c> of the solution yields exactly the three libraries and the <c>kawa</c> tool, each with its
/// metadata, README and documentation, and nothing from the tests or perf.
/// </summary>
/// <remarks>
/// Packs with <c>--no-build</c> in the test assembly's own configuration: building this test project built every
/// shipped project in that configuration (they are all referenced), so their outputs are there.
/// </remarks>
[NonParallelizable]
public sealed class PackageTests
{
    private static readonly string[] Libraries = ["Kawa.Dataflow", "Kawa.Dataflow.Nats", "Kawa.Dataflow.Parquet"];
    private readonly Dictionary<string, Package> _packages = new(StringComparer.Ordinal);
    private string _output = string.Empty;

    [OneTimeSetUp]
    public async Task PackSolution()
    {
        _output = Path.Combine(Path.GetTempPath(), "kawa-pack-" + Guid.NewGuid().ToString("N"));
        var configuration = new DirectoryInfo(TestContext.CurrentContext.TestDirectory).Parent!.Name;
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = TestPaths.RepoRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "pack", "Kawa.Dataflow.sln", "--no-build", "-c", configuration, "-o", _output, "-nologo" })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        Assert.That(process.ExitCode, Is.Zero, $"dotnet pack failed:\n{await stdout}\n{await stderr}");

        foreach (var file in Directory.GetFiles(_output, "*.nupkg"))
        {
            var package = Package.Read(file);
            _packages.Add(package.Id, package);
        }
    }

    [OneTimeTearDown]
    public void DeleteOutput()
    {
        if (Directory.Exists(_output))
        {
            Directory.Delete(_output, recursive: true);
        }
    }

    [Test]
    public void Pack_Solution_ProducesTheThreeLibrariesAndTheToolOnly()
    {
        Assert.That(_packages.Keys, Is.EquivalentTo(new[] { "Kawa.Dataflow", "Kawa.Dataflow.Nats", "Kawa.Dataflow.Parquet", "Kawa.Dataflow.Cli" }));
        Assert.That(Directory.GetFiles(_output).Select(Path.GetFileName), Has.None.Contains("Tests").And.None.Contains("perf"));
    }

    [TestCase("Kawa.Dataflow")]
    [TestCase("Kawa.Dataflow.Nats")]
    [TestCase("Kawa.Dataflow.Parquet")]
    [TestCase("Kawa.Dataflow.Cli")]
    public void Pack_EachPackage_CarriesItsMetadataAndReadme(string id)
    {
        var package = _packages[id];
        Assert.Multiple(() =>
        {
            Assert.That(package.Meta("version"), Does.Match(@"^\d+\.\d+\.\d+"));
            Assert.That(package.Meta("description"), Has.Length.GreaterThan(40), "description");
            Assert.That(package.Meta("authors"), Is.Not.Empty, "authors");
            Assert.That(package.Metadata.Element(package.Name("license"))?.Attribute("type")?.Value, Is.EqualTo("expression"), "license is an SPDX expression");
            Assert.That(package.Meta("license"), Is.EqualTo("Apache-2.0"));
            Assert.That(package.Meta("projectUrl"), Does.StartWith("https://"), "projectUrl");
            Assert.That(package.Metadata.Element(package.Name("repository"))?.Attribute("url")?.Value, Does.StartWith("https://"), "repository url");
            Assert.That(package.Metadata.Element(package.Name("repository"))?.Attribute("type")?.Value, Is.EqualTo("git"), "repository type");
            Assert.That(package.Meta("tags").Split(' '), Does.Contain("kawa"), "tags");
            Assert.That(package.Meta("readme"), Is.EqualTo("README.md"), "readme declared");
            Assert.That(package.Entries, Does.Contain("README.md"), "README packed");
            Assert.That(package.ReadText("README.md"), Does.StartWith("# "), "README has content");
        });
    }

    [TestCase("Kawa.Dataflow")]
    [TestCase("Kawa.Dataflow.Nats")]
    [TestCase("Kawa.Dataflow.Parquet")]
    public void Pack_Library_HoldsOnlyItsAssemblyAndXmlDocs(string id)
    {
        var package = _packages[id];
        var content = package.Entries.Where(e => e.StartsWith("lib/", StringComparison.Ordinal) || e.StartsWith("tools/", StringComparison.Ordinal) || e.StartsWith("content", StringComparison.Ordinal)).ToArray();
        Assert.That(content, Is.EquivalentTo(new[] { $"lib/net10.0/{id}.dll", $"lib/net10.0/{id}.xml" }));
        Assert.That(package.ReadText($"lib/net10.0/{id}.xml"), Does.Contain("<member name="), "API documentation is generated");
    }

    [Test]
    public void Pack_Adapters_DependOnTheCoreOfTheSameVersion_AndTheCoreOnNoAdapterDependency()
    {
        var core = _packages["Kawa.Dataflow"];
        var coreDependencies = core.Dependencies().Select(d => d.Id).ToArray();
        Assert.Multiple(() =>
        {
            foreach (var adapter in Libraries.Skip(1))
            {
                Assert.That(_packages[adapter].Dependencies(), Does.Contain(("Kawa.Dataflow", core.Meta("version"))), adapter);
            }

            // Adapters never leak their dependencies into the core.
            Assert.That(coreDependencies, Has.None.StartsWith("Kawa.").And.None.StartsWith("AWSSDK").And.None.Contains("BouncyCastle").And.None.Contains("Snappy"));
        });
    }

    [Test]
    public void Pack_Cli_IsADotnetToolWithTheKawaCommand()
    {
        var tool = _packages["Kawa.Dataflow.Cli"];
        var packageType = tool.Metadata.Element(tool.Name("packageTypes"))?.Element(tool.Name("packageType"))?.Attribute("name")?.Value;
        var settings = XDocument.Parse(tool.ReadText("tools/net10.0/any/DotnetToolSettings.xml"));
        var command = settings.Descendants("Command").Single();
        Assert.Multiple(() =>
        {
            Assert.That(packageType, Is.EqualTo("DotnetTool"));
            Assert.That(command.Attribute("Name")?.Value, Is.EqualTo("kawa"));
            Assert.That(command.Attribute("EntryPoint")?.Value, Is.EqualTo("kawa.dll"));
            Assert.That(tool.Entries, Does.Contain("tools/net10.0/any/kawa.dll").And.Contain("tools/net10.0/any/kawa.runtimeconfig.json"));
            Assert.That(tool.Entries, Does.Contain("tools/net10.0/any/Kawa.Dataflow.Nats.dll").And.Contain("tools/net10.0/any/Kawa.Dataflow.Parquet.dll"));
            // Nothing from the test projects, their frameworks, or perf.
            Assert.That(tool.Entries, Has.None.Contains("Tests").And.None.Contains("FaultHost").And.None.Contains("nunit").And.None.Contains("NSubstitute").And.None.Contains("perf").And.None.Contains("BenchmarkDotNet"));
        });
    }

    /// <summary>A .nupkg read into memory: its entries and its nuspec.</summary>
    private sealed class Package
    {
        private readonly Dictionary<string, byte[]> _files;

        private Package(Dictionary<string, byte[]> files, XElement metadata)
        {
            _files = files;
            Metadata = metadata;
        }

        public XElement Metadata { get; }

        public string Id => Meta("id");

        public IReadOnlyCollection<string> Entries => _files.Keys;

        public static Package Read(string path)
        {
            using var zip = ZipFile.OpenRead(path);
            var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            foreach (var entry in zip.Entries)
            {
                using var stream = entry.Open();
                using var copy = new MemoryStream();
                stream.CopyTo(copy);
                files[entry.FullName] = copy.ToArray();
            }

            var nuspec = files.Single(f => f.Key.EndsWith(".nuspec", StringComparison.Ordinal) && !f.Key.Contains('/', StringComparison.Ordinal));
            var root = XDocument.Parse(System.Text.Encoding.UTF8.GetString(nuspec.Value).TrimStart('\uFEFF')).Root!;
            return new Package(files, root.Element(root.Name.Namespace + "metadata")!);
        }

        public XName Name(string local) => Metadata.Name.Namespace + local;

        public string Meta(string element) => Metadata.Element(Name(element))?.Value ?? string.Empty;

        public string ReadText(string entry) => System.Text.Encoding.UTF8.GetString(_files[entry]).TrimStart('\uFEFF');

        public IEnumerable<(string Id, string Version)> Dependencies() =>
            Metadata.Descendants(Name("dependency")).Select(d => (d.Attribute("id")!.Value, d.Attribute("version")!.Value));
    }
}
