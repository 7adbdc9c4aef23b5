from configparser import ConfigParser
import setuptools, shlex

# nbdev keeps the package metadata in settings.ini; this file turns it into setuptools arguments.
config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

licenses = {'apache2': 'Apache-2.0'}  # settings.ini's name -> SPDX license expression (PEP 639)
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12 3.13'.split()

lic = licenses[cfg['license'].lower()]
min_python = cfg['min_python']
requirements = shlex.split(cfg.get('requirements', ''))
notebooks_requirements = shlex.split(cfg.get('notebooks_requirements', ''))  # run and check the lessons (Colab)
hub_requirements = {k: shlex.split(cfg.get(f'{k}_requirements', '')) for k in ('hf', 'kaggle')}  # official weights
dev_requirements = (notebooks_requirements + hub_requirements['hf'] + hub_requirements['kaggle']
                    + shlex.split(cfg.get('dev_requirements', '')))  # + the test oracles, pyflakes (tests/test_layout.py), the docs tools
console_scripts = cfg.get('console_scripts', '').split()

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    keywords=cfg['keywords'].split(),
    license_expression=lic,
    classifiers=['Development Status :: ' + statuses[int(cfg['status']) - 1],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'Natural Language :: ' + cfg['language'].title()]
                + ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    author=cfg['author'],
    author_email=cfg['author_email'],
    packages=setuptools.find_packages(include=['paligemma', 'paligemma.*']),
    package_data={'paligemma.assets': ['*.npz', '*.model']},  # the shipped tiny model, tokenizer, mask decoder
    install_requires=requirements,
    extras_require={**hub_requirements, 'notebooks': notebooks_requirements, 'dev': dev_requirements},
    python_requires='>=' + min_python,
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': console_scripts, 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
